//! The frame around every signed-in page: header, navigation, sign-out.

use leptos::prelude::*;

/// Header and main column shared by the signed-in pages.
#[component]
pub fn Frame(children: Children) -> impl IntoView {
    view! {
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex max-w-6xl items-center justify-between gap-4 px-4 py-3">
                <a href="/" class="text-lg font-semibold tracking-tight focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 rounded">
                    "Factory"
                </a>
                <nav class="flex items-center gap-4 text-sm">
                    <a href="/" class="rounded px-2 py-1 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500">
                        "Runs"
                    </a>
                    <a href="/approvals" class="rounded px-2 py-1 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500">
                        "Approvals"
                    </a>
                    <form method="post" action="/logout">
                        <button
                            type="submit"
                            class="rounded px-2 py-1 text-slate-600 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500"
                        >
                            "Sign out"
                        </button>
                    </form>
                </nav>
            </div>
        </header>
        <main class="mx-auto max-w-6xl px-4 py-6">{children()}</main>
    }
}

/// Shown for any path the dashboard does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="mx-auto max-w-xl px-4 py-16 text-center">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-600">
                "Nothing lives at this address. "
                <a class="text-indigo-700 underline" href="/">"Go to the runs"</a>
            </p>
        </main>
    }
}
