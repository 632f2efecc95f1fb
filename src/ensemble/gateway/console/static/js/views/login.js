import { describeError, isSignedIn, signIn } from "../api.js";
import { field, h, replace } from "../ui.js";

export const title = "Log in";

export async function mount(root, ctx) {
  const next = ctx.params.query.get("next") || "";
  const { signedIn } = await import("../app.js");
  if (isSignedIn()) {
    await signedIn(next);
    return undefined;
  }
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", text: "Log in" });
  const form = h("form", { class: "card login", "aria-labelledby": "login-title", novalidate: true },
    h("h1", { id: "login-title", text: "Log in to Ensemble" }),
    field("Email", email),
    field("Password", password),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!email.value.trim() || !password.value) {
      replace(error, "Enter your email and password.");
      error.hidden = false;
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      await signIn(email.value.trim(), password.value);
      await signedIn(next);
    } catch (err) {
      replace(error, err.status === 401 ? "That email and password don't match an account." : describeError(err));
      error.hidden = false;
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  root.append(form);
  email.focus();
  return undefined;
}
