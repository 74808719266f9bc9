//! The sign-in page: a plain HTML form (works before hydration) posting the admin token to
//! `/login`, which sets the session cookie.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Sign in with an admin token.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some("That token is not valid. Check it and try again."),
            Some("missing") => Some("Enter the admin token printed when Factory first started."),
            Some(_) => Some("Sign-in failed. Try again."),
            None => None,
        })
    };
    view! {
        <main class="flex min-h-screen items-center justify-center px-4">
            <form
                method="post"
                action="/login"
                class="w-full max-w-sm space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm"
            >
                <div>
                    <h1 class="text-xl font-semibold">"Sign in to Factory"</h1>
                    <p class="mt-1 text-sm text-slate-600">
                        "Use the admin token Factory printed on first start, or create one with "
                        <code class="rounded bg-slate-100 px-1">"factory token create"</code> "."
                    </p>
                </div>
                {move || {
                    error()
                        .map(|msg| {
                            view! {
                                <p role="alert" class="rounded border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
                                    {msg}
                                </p>
                            }
                        })
                }}
                <label class="block text-sm font-medium" for="token">
                    "Admin token"
                </label>
                <input
                    id="token"
                    name="token"
                    type="password"
                    required
                    autocomplete="current-password"
                    class="w-full rounded border border-slate-300 px-3 py-2 font-mono text-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                />
                <button
                    type="submit"
                    class="w-full rounded bg-indigo-600 px-3 py-2 text-sm font-medium text-white hover:bg-indigo-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 focus-visible:ring-offset-2"
                >
                    "Sign in"
                </button>
            </form>
        </main>
    }
}
