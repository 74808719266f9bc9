//! The frame around every signed-in page: header, navigation, the live link, sign-out.

use leptos::prelude::*;

use crate::live::{LiveLink, LiveScope};

/// Header and main column shared by the signed-in pages. `live` names the events that make
/// the page refresh itself (see [`crate::live`]).
#[component]
pub fn Frame(live: LiveScope, children: Children) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let seq = crate::live::render_seq();
    #[cfg(not(feature = "ssr"))]
    let seq = 0_i64;
    let kinds: Vec<String> = live.kinds.iter().map(|k| k.to_string()).collect();
    view! {
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex max-w-7xl flex-wrap items-center justify-between gap-2 px-4 py-3">
                <a href="/" class="text-lg font-semibold tracking-tight focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 rounded">
                    "Factory"
                </a>
                <nav class="flex flex-wrap items-center gap-1 text-sm" aria-label="Main">
                    <NavLink href="/" label="Runs" />
                    <NavLink href="/approvals" label="Approvals" />
                    <NavLink href="/costs" label="Costs" />
                    <NavLink href="/gym" label="Gym" />
                    <NavLink href="/memory" label="Memory" />
                    <NavLink href="/audit" label="Audit" />
                    <NavLink href="/settings" label="Settings" />
                    <LiveLink run=live.run kinds />
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
        <div class="factory-progress" aria-hidden="true"></div>
        <main class="mx-auto max-w-7xl px-4 py-6" data-render-seq=seq>{children()}</main>
    }
}

/// One navigation entry; the current page is marked for assistive technology and the eye.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let current = move || {
        let path = location.pathname.get();
        if href == "/" {
            path == "/" || path.starts_with("/runs/")
        } else {
            path.starts_with(href)
        }
    };
    view! {
        <a
            href=href
            aria-current=move || current().then_some("page")
            class=move || {
                format!(
                    "rounded px-2 py-1 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 {}",
                    if current() { "bg-slate-100 font-medium text-indigo-700" } else { "" },
                )
            }
        >
            {label}
        </a>
    }
}

/// A red box with the server's message, for any failed load or action.
#[component]
pub fn ErrorBox(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <p role="alert" class="mt-4 rounded border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
            {message}
        </p>
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
