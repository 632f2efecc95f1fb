"""The running demo, in-process: printed credentials log in, the print room is live, REST jobs print.

The real server (``tests.server.running_server``) with ``run_demo`` in its
nursery, as ``serve(demo=True)`` does; faster printers so the test takes
seconds, not minutes.  Everything is observed as a client would: REST and the
dashboard WebSocket.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from ensemble.demo import PRINTERS, DirectorOptions, RunningDemo, run_demo
from ensemble.hubs.simulator import PrintSettings
from tests.demo._helpers import DEMO_EMAILS, login, login_token, printed_credentials
from tests.hubs._helpers import Dashboard, Gateway, Tenant, open_dashboard, upload_print_file
from tests.server import running_server

FAST = PrintSettings(print_seconds=20.0, heat_seconds=0.5, layers=20)
# Fail bay 2's seeded job as soon as it prints, clear the error a second later.
QUICK = DirectorOptions(idle_pause_s=1.0, poll_s=0.2, fail_at_progress=2.0, clear_error_after_s=1.0)


def progress_of(board: Dashboard, printer_id: str) -> int:
    return int(board.printers.get(printer_id, {}).get("progress") or 0)


async def test_the_demo_is_alive(fresh_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with running_server(fresh_database_url, tmp_path) as srv, trio.open_nursery() as nursery:
        demo: RunningDemo = await nursery.start(partial(run_demo, srv.services, srv.url, printer_settings=FAST,
                                                        director=QUICK))
        printed = capsys.readouterr().out
        assert f"console:     {srv.url}/" in printed
        credentials = printed_credentials(printed)
        assert {email: role for email, (role, _) in credentials.items()} == DEMO_EMAILS
        bay1, bay2, bay3 = (str(p.printer_id) for p in demo.seed.printers)

        async with srv.client() as http:
            # Every printed account logs in; the viewer sees the hub and the three printers.
            tokens = {email: await login_token(http, email, password) for email, (_, password) in credentials.items()}
            viewer = {"Authorization": f"Bearer {tokens['viewer@demo.ensemble.local']}"}
            r = await http.get("/api/v1/printers", headers=viewer)
            assert [p["name"] for p in r.json()["data"]] == [p.name for p in PRINTERS]
            owner_token = tokens["owner@demo.ensemble.local"]
            gateway = Gateway(url=srv.url, port=int(srv.url.rsplit(":", 1)[1]), services=srv.services)

            async with open_dashboard(gateway, owner_token) as board:
                with trio.fail_after(60):
                    await board.wait_for(lambda b: b.hubs.get(demo.seed.hub_id, {}).get("is_online") is True, 60)
                    assert set(board.printers) == {bay1, bay2, bay3}
                    # Bay 1 prints the seeded calibration cube: its progress moves.
                    await board.wait_for(lambda b: progress_of(b, bay1) > 0, 60)
                    seen = progress_of(board, bay1)
                    await board.wait_for(lambda b: progress_of(b, bay1) > seen, 30)
                    # Bay 2's seeded gear housing fails on the injected nozzle clog, then the printer is free.
                    await board.wait_for(lambda b: any(
                        j.get("printer_id") == bay2 and j["status"] == "failed"
                        and "E_NOZZLE_CLOG" in (j.get("failure_reason") or "") for j in b.jobs.values()), 30)
                    await board.wait_for(lambda b: b.printers[bay2].get("status") == "idle", 30)
                    assert any(a["kind"] == "printer_error" and a.get("printer_id") == bay2 for a in board.alerts)

                    # A job started over REST on the idle bay 3 makes its simulator print it.
                    owner = Tenant(http=http, email="", user_id="", tenant_id=str(demo.seed.tenant_id), role="owner",
                                   access_token=owner_token, refresh_token="")
                    part = await upload_print_file(owner, print_seconds=3, layers=6, name="bracket.gcode")
                    r = await owner.post("/api/v1/print-jobs", json={"printer_id": bay3, "file_id": part["id"]})
                    assert r.status_code == 201, r.text
                    job = r.json()["data"]
                    await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["completed"], 40)
                    assert board.job_history[job["id"]] == ["queued", "uploading", "printing", "completed"]
                    assert demo.fleet.simulators[bay3].model.log == [("start", job["id"], "bracket.gcode")]

                    # Bay 1 keeps printing: its cube cancelled over REST, it starts the next demo print by itself.
                    cube = next(j for j in board.jobs.values() if j.get("printer_id") == bay1)
                    r = await owner.post(f"/api/v1/print-jobs/{cube['job_id']}/cancel", json={})
                    assert r.status_code == 200, r.text
                    await board.wait_for(lambda b: any(
                        j.get("printer_id") == bay1 and j["job_id"] != cube["job_id"] and j["status"] == "printing"
                        for j in b.jobs.values()), 40)
                    assert [e[0] for e in demo.fleet.simulators[bay1].model.log] == ["start", "stop", "start"]

            jobs = (await owner.get("/api/v1/print-jobs", params={"limit": 100})).json()["data"]
            by_file: dict[str, Any] = {}
            for j in jobs:
                by_file.setdefault(j["file_name"], []).append(j["status"])
            assert by_file["cable-clip.gcode"] == ["cancelled"]
            assert by_file["gear-housing.gcode"] == ["failed"]
            assert by_file["calibration-cube.gcode"] == ["cancelled"]
            assert by_file["3dbenchy.gcode"] == ["printing"]  # the first of the rotation
            assert by_file["bracket.gcode"] == ["completed"]
            r = await http.get("/api/v1/hubs", headers=viewer)
            assert [h["is_online"] for h in r.json()["data"]] == [True]
            # The sample manuals answer searches.
            r = await http.get("/api/v1/knowledge/search", params={"q": "flash code high pressure switch"},
                               headers=viewer)
            assert r.status_code == 200, r.text
            assert r.json()["data"], "the sample manuals are searchable"
            assert (await login(http, "viewer@demo.ensemble.local", "not the password")).status_code == 401
        nursery.cancel_scope.cancel()
