"""Simulator ⇄ agent ⇄ gateway ⇄ dashboard, with real Postgres, all on 127.0.0.1.

* a dashboard sees a simulated printer's live status through the agent; a job
  started over REST makes the simulator print; progress and completion reach
  the dashboard, the job history and the telemetry;
* the gateway is stopped mid-print and started again: the agent buffers,
  reconnects and flushes; a pause sent while the hub is offline runs exactly
  once on the device; no job event is lost; the dashboard ends right;
* an acknowledgement lost on the wire makes the cloud send the command again:
  the hub answers from memory and the device runs it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from ensemble.hubs.simulator import PAUSED, PrintSettings, SimulatorThread
from tests.hubs._helpers import (
    Dashboard,
    Gateway,
    Proxy,
    Tenant,
    add_printer,
    agent_config,
    claim,
    eventually,
    open_dashboard,
    provision_hub,
    running_agent,
    running_gateway,
    signup,
    upload_print_file,
)


def job_status(job_id: str) -> Any:
    return lambda board: board.jobs.get(job_id, {}).get("status")


async def rest_job(owner: Tenant, job_id: str) -> dict[str, Any]:
    r = await owner.get(f"/api/v1/print-jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_live_status_and_a_print_job(gateway: Gateway, simulator: SimulatorThread, tmp_path: Path) -> None:
    async with gateway.client() as http:
        owner = await signup(http)
        hub = await provision_hub(gateway.services)
        await claim(owner, hub, "Bench hub")
        printer = await add_printer(owner, hub.hub_id, "Bench printer")
        config = agent_config(gateway, hub, tmp_path / "agent", [(printer["id"], simulator.endpoint)])
        async with open_dashboard(gateway, owner.access_token) as board, running_agent(config) as agent:
            # Live status from the simulated printer, through the agent.
            await board.wait_for(lambda b: b.printers.get(printer["id"], {}).get("status") == "idle")
            assert board.printers[printer["id"]]["nozzle_temp"] == 22.0
            assert board.printers[printer["id"]]["name"] == "Bench printer"
            await board.wait_for(lambda b: b.hubs.get(hub.hub_id, {}).get("is_online") is True)

            file = await upload_print_file(owner, print_seconds=3, layers=12, size=150_000)
            r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
            assert r.status_code == 201, r.text
            job = r.json()["data"]
            await board.wait_for(lambda b: job_status(job["id"])(b) == "printing"
                                 and (b.printers[printer["id"]].get("progress") or 0) > 0)
            await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["completed"], timeout=30)
            assert board.job_history[job["id"]] == ["queued", "uploading", "printing", "completed"]
            progress = [f.get("progress") for f in board.frames
                        if f["type"] == "printer_status" and f["printer_id"] == printer["id"]
                        and f.get("job_id") == job["id"] and f.get("progress") is not None]
            assert progress == sorted(progress) and 0 < len(set(progress)) and progress[-1] == 100
            layers = {f.get("current_layer") for f in board.frames if f.get("job_id") == job["id"]}
            assert 12 in layers and len(layers) > 2

            done = await rest_job(owner, job["id"])
            assert (done["status"], done["progress"], done["total_layers"]) == ("completed", 100, 12)
            assert done["bytes_sent"] == done["bytes_total"] == file["size_bytes"]
            assert [t["status"] for t in done["transitions"]] == ["queued", "uploading", "printing", "completed"]
            assert simulator.model.log == [("start", job["id"], file["name"])]

            # A second job, paused and resumed live.
            slow = await upload_print_file(owner, print_seconds=5, layers=10, name="slow.gcode")
            r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": slow["id"]})
            second = r.json()["data"]
            await board.wait_for(lambda b: (b.jobs.get(second["id"], {}).get("progress") or 0) >= 10, timeout=30)
            r = await owner.post(f"/api/v1/print-jobs/{second['id']}/pause", json={})
            assert r.status_code == 200, r.text
            await board.wait_for(lambda b: job_status(second["id"])(b) == "paused")
            await board.wait_for(lambda b: b.printers[printer["id"]]["status"] == "paused")
            r = await owner.post(f"/api/v1/print-jobs/{second['id']}/resume", json={})
            assert r.status_code == 200, r.text
            await board.wait_for(lambda b: b.job_history.get(second["id"], [])[-1:] == ["completed"], timeout=30)
            assert board.job_history[second["id"]] == ["queued", "uploading", "printing", "paused", "printing",
                                                      "completed"]
            assert [e[0] for e in simulator.model.log] == ["start", "start", "pause", "resume"]
            assert agent.statistics()["outbox"] < 50

        # Telemetry was recorded along the way.
        r = await owner.get(f"/api/v1/printers/{printer['id']}/telemetry",
                            params={"start": done["submitted_at"], "interval": "raw", "metrics": "progress,nozzle_temp"})
        assert r.status_code == 200, r.text
        series = {s["metric"]: s["points"] for s in r.json()["data"]["series"]}
        assert max(p["value"] for p in series["progress"]) == 100
        assert max(p["value"] for p in series["nozzle_temp"]) == 215.0


async def _board_offset(board: Dashboard) -> int:
    return max(f["offset"] for f in board.frames if isinstance(f.get("offset"), int))


async def test_gateway_restart_mid_print(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    sim = SimulatorThread(PrintSettings(heat_seconds=0.5))
    await trio.to_thread.run_sync(sim.start)
    try:
        async with trio.open_nursery() as nursery:
            proxy = Proxy(0)
            await nursery.start(proxy.serve)
            async with running_gateway(database_url, data_dir) as g1, g1.client() as http:
                proxy.restore(g1.port)
                owner = await signup(http)
                hub = await provision_hub(g1.services)
                await claim(owner, hub)
                printer = await add_printer(owner, hub.hub_id)
                file = await upload_print_file(owner, print_seconds=9, layers=30)
                config = agent_config(proxy.ws, hub, tmp_path / "agent", [(printer["id"], sim.endpoint)])
                agent_scope = trio.CancelScope()

                async def run_agent(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                    with agent_scope:
                        async with running_agent(config) as agent:
                            task_status.started(agent)
                            await trio.sleep_forever()

                agent = await nursery.start(run_agent)
                async with open_dashboard(g1, owner.access_token) as board1:
                    await board1.wait_for(lambda b: b.printers.get(printer["id"], {}).get("status") == "idle")
                    r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
                    job = r.json()["data"]
                    await board1.wait_for(lambda b: (b.jobs.get(job["id"], {}).get("progress") or 0) >= 10)
                    # The link goes down, then the whole gateway.
                    proxy.cut()
                    await board1.wait_for(lambda b: b.hubs[hub.hub_id]["is_online"] is False)
                    last_seen_offset = await _board_offset(board1)
                    seen_before = list(board1.job_history[job["id"]])
                token = owner.access_token
            # Gateway down: the agent keeps recording the print.
            outbox_at_stop = agent.statistics()["outbox"]
            await eventually(lambda: agent.statistics()["outbox"] >= outbox_at_stop + 3)
            assert not agent.online

            async with running_gateway(database_url, data_dir) as g2, g2.client() as http2:
                owner.http = http2
                # A command sent while the hub is offline: pending, not lost.
                r = await owner.post(f"/api/v1/print-jobs/{job['id']}/pause", json={})
                assert r.status_code == 200, r.text
                assert r.json()["data"]["status"] == "printing"
                async with open_dashboard(g2, token, since=last_seen_offset) as board2:
                    proxy.restore(g2.port)
                    await agent.wait_until(lambda a: a.online)
                    await board2.wait_for(lambda b: job_status(job["id"])(b) == "paused", timeout=20)
                    assert sim.model.state == PAUSED
                    r = await owner.post(f"/api/v1/print-jobs/{job['id']}/resume", json={})
                    assert r.status_code == 200, r.text
                    await board2.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["completed"], timeout=30)
                    # The since-replay delivered exactly what came after the last frame seen, in order.
                    offsets = [f["offset"] for f in board2.frames if isinstance(f.get("offset"), int)]
                    assert board2.frames[0]["type"] != "snapshot" and offsets[0] == last_seen_offset + 1
                    assert offsets == sorted(offsets)
                    await board2.wait_for(lambda b: b.printers.get(printer["id"], {}).get("status") == "idle")
                    assert board2.printers[printer["id"]]["progress"] == 100
                    assert board2.hubs[hub.hub_id]["is_online"] is True

                final = await rest_job(owner, job["id"])
                history = [t["status"] for t in final["transitions"]]
                assert history == ["queued", "uploading", "printing", "paused", "printing", "completed"]
                # Every job event reached the dashboards, in order, none lost or doubled.
                seen = seen_before + board2.job_history[job["id"]]
                deduped = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
                assert deduped == history
                # The device ran each command exactly once.
                actions = [entry[0] for entry in sim.model.log]
                assert actions == ["start", "pause", "resume"], sim.model.log
                # Statuses recorded while the gateway was down reached the telemetry with their own times.
                r = await owner.get(f"/api/v1/printers/{printer['id']}/telemetry",
                                    params={"start": final["submitted_at"], "interval": "raw", "metrics": "progress"})
                points = r.json()["data"]["series"][0]["points"]
                assert len(points) >= 10 and [p["ts"] for p in points] == sorted(p["ts"] for p in points)
            agent_scope.cancel()
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(sim.stop)


async def test_a_lost_ack_makes_a_resend_that_runs_once(gateway: Gateway, simulator: SimulatorThread,
                                                        tmp_path: Path) -> None:
    async with gateway.client() as http, trio.open_nursery() as nursery:
        proxy = Proxy(gateway.port)
        await nursery.start(proxy.serve)
        owner = await signup(http)
        hub = await provision_hub(gateway.services)
        await claim(owner, hub)
        printer = await add_printer(owner, hub.hub_id)
        file = await upload_print_file(owner, print_seconds=8, layers=16)
        config = agent_config(proxy.ws, hub, tmp_path / "agent", [(printer["id"], simulator.endpoint)])
        async with open_dashboard(gateway, owner.access_token) as board, running_agent(config) as agent:
            r = await owner.post("/api/v1/print-jobs", json={"printer_id": printer["id"], "file_id": file["id"]})
            job = r.json()["data"]
            await board.wait_for(lambda b: (b.jobs.get(job["id"], {}).get("progress") or 0) >= 5, timeout=20)
            # Hub -> cloud bytes stop flowing: the pause arrives and runs, its ack never gets through.
            proxy.hold_upstream = True
            r = await owner.post(f"/api/v1/print-jobs/{job['id']}/pause", json={})
            assert r.status_code == 200, r.text
            await eventually(lambda: simulator.model.state == PAUSED)
            await trio.sleep(0.3)
            assert job_status(job["id"])(board) == "printing"  # the cloud has not heard back
            proxy.cut()
            proxy.restore()
            await board.wait_for(lambda b: job_status(job["id"])(b) == "paused", timeout=20)
            await agent.wait_until(lambda a: a.duplicates >= 1)  # the cloud sent it again...
            assert [e[0] for e in simulator.model.log] == ["start", "pause"]  # ...the device ran it once
            r = await owner.post(f"/api/v1/print-jobs/{job['id']}/resume", json={})
            assert r.status_code == 200, r.text
            await board.wait_for(lambda b: b.job_history.get(job["id"], [])[-1:] == ["completed"], timeout=30)
            assert [e[0] for e in simulator.model.log] == ["start", "pause", "resume"]
        nursery.cancel_scope.cancel()
