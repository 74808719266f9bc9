//! A stage artifact shown as HTML (rendered from markdown and sanitised on the server) and a
//! work order's change as a unified diff: the two views the run page embeds.

use leptos::prelude::*;

use crate::pages::ErrorBox;
use crate::server_fns::artifacts::{DiffFile, DiffLineKind, artifact_html, work_order_diff};
use crate::server_fns::error_text;

/// Typography for sanitised artifact HTML: headings, lists, tables, code and quotes styled
/// from the container, since the HTML itself carries no classes.
const PROSE: &str = "max-w-none break-words text-sm leading-relaxed text-slate-800 \
    [&_h1]:mt-4 [&_h1]:text-xl [&_h1]:font-semibold [&_h2]:mt-4 [&_h2]:text-lg [&_h2]:font-semibold \
    [&_h3]:mt-3 [&_h3]:font-semibold [&_h4]:mt-3 [&_h4]:font-medium [&_p]:mt-2 \
    [&_ul]:mt-2 [&_ul]:list-disc [&_ul]:pl-6 [&_ol]:mt-2 [&_ol]:list-decimal [&_ol]:pl-6 [&_li]:mt-1 \
    [&_a]:text-indigo-700 [&_a]:underline [&_blockquote]:mt-2 [&_blockquote]:border-l-4 \
    [&_blockquote]:border-slate-300 [&_blockquote]:pl-3 [&_blockquote]:text-slate-600 \
    [&_code]:rounded [&_code]:bg-slate-100 [&_code]:px-1 [&_code]:font-mono [&_code]:text-[0.85em] \
    [&_pre]:mt-2 [&_pre]:overflow-x-auto [&_pre]:rounded [&_pre]:bg-slate-900 [&_pre]:p-3 \
    [&_pre]:text-slate-100 [&_pre_code]:bg-transparent [&_pre_code]:p-0 \
    [&_table]:mt-2 [&_table]:block [&_table]:overflow-x-auto [&_table]:border-collapse \
    [&_th]:border [&_th]:border-slate-300 [&_th]:bg-slate-50 [&_th]:px-2 [&_th]:py-1 [&_th]:text-left \
    [&_td]:border [&_td]:border-slate-300 [&_td]:px-2 [&_td]:py-1 [&_hr]:my-4 [&_img]:max-w-full";

/// One artifact of a run, loaded from the server and shown as formatted text.
#[component]
pub fn ArtifactView(run_id: String, path: String) -> impl IntoView {
    let artifact = Resource::new(
        move || (run_id.clone(), path.clone()),
        |(run_id, path)| artifact_html(run_id, path),
    );
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-500" role="status">"Loading the artifact…"</p> }>
            {move || Suspend::new(async move {
                match artifact.await {
                    Ok(a) => view! {
                        <article class="rounded-lg border border-slate-200 bg-white p-4" data-testid="artifact" data-path=a.path.clone()>
                            <header class="flex flex-wrap items-baseline justify-between gap-2 border-b border-slate-100 pb-2 text-xs text-slate-500">
                                <span class="font-mono text-slate-700">{a.name.clone()}</span>
                                <span>{format!("{} · {} · {}", a.stage, a.team, format_bytes(a.bytes))}</span>
                            </header>
                            // Sanitised on the server (ammonia): no scripts, handlers or styles.
                            <div class=PROSE inner_html=a.html></div>
                        </article>
                    }
                    .into_any(),
                    Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A work order's commit as a unified diff: one block per file with its counts.
#[component]
pub fn DiffView(run_id: String, work_order_id: String) -> impl IntoView {
    let diff = Resource::new(
        move || (run_id.clone(), work_order_id.clone()),
        |(run_id, id)| work_order_diff(run_id, id),
    );
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-500" role="status">"Loading the diff…"</p> }>
            {move || Suspend::new(async move {
                match diff.await {
                    Ok(d) => {
                        let summary = format!(
                            "{} changed, +{} −{} · commit {}",
                            match d.files.len() {
                                1 => "1 file".to_string(),
                                n => format!("{n} files"),
                            },
                            d.additions,
                            d.deletions,
                            d.commit.chars().take(10).collect::<String>(),
                        );
                        view! {
                            <div data-testid="diff" data-commit=d.commit.clone()>
                                <p class="text-sm text-slate-600">{summary}</p>
                                {d.truncated.then(|| view! {
                                    <p class="mt-2 rounded border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900" role="note">
                                        "This diff is large: the rest of its lines are left out here. The counts above cover every file; "
                                        "see the branch in the repository for the whole change."
                                    </p>
                                })}
                                {d.files.is_empty().then(|| view! {
                                    <p class="mt-2 text-sm text-slate-500">"The commit changes no file."</p>
                                })}
                                <div class="mt-2 space-y-3">
                                    {d.files.into_iter().map(|f| view! { <FileDiffView file=f /> }).collect_view()}
                                </div>
                            </div>
                        }
                        .into_any()
                    }
                    Err(e) => view! { <ErrorBox message=error_text(&e) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One file of a diff: header with counts, then its lines (scrolling sideways when narrow).
#[component]
fn FileDiffView(file: DiffFile) -> impl IntoView {
    let title = match &file.old_path {
        Some(old) => format!("{old} → {}", file.path),
        None => file.path.clone(),
    };
    let body = if file.binary {
        view! { <p class="px-3 py-2 text-xs text-slate-500">"Binary file: no lines to show."</p> }
            .into_any()
    } else if file.lines.is_empty() {
        view! { <p class="px-3 py-2 text-xs text-slate-500">"Lines left out (the diff is large)."</p> }.into_any()
    } else {
        view! {
            <div class="overflow-x-auto">
                <pre class="min-w-max py-1 font-mono text-xs leading-5">
                    {file.lines.into_iter().map(|line| {
                        let (class, mark) = match line.kind {
                            DiffLineKind::Addition => ("bg-green-50 text-green-900", "+"),
                            DiffLineKind::Deletion => ("bg-red-50 text-red-900", "-"),
                            DiffLineKind::Hunk => ("bg-slate-100 text-slate-500", ""),
                            DiffLineKind::Context => ("text-slate-700", " "),
                        };
                        view! { <div class=format!("px-3 {class}")>{format!("{mark}{}", line.text)}</div> }
                    }).collect_view()}
                </pre>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="overflow-hidden rounded-lg border border-slate-200 bg-white" data-file=file.path.clone()>
            <header class="flex flex-wrap items-center justify-between gap-2 border-b border-slate-200 bg-slate-50 px-3 py-2 text-sm">
                <span class="break-all font-mono text-slate-800">{title}</span>
                <span class="flex items-center gap-2 text-xs">
                    <span class="text-slate-500">{file.status.clone()}</span>
                    <span class="font-medium text-green-700" data-additions=file.additions>{format!("+{}", file.additions)}</span>
                    <span class="font-medium text-red-700" data-deletions=file.deletions>{format!("−{}", file.deletions)}</span>
                </span>
            </header>
            {body}
        </section>
    }
}

/// A byte count for people.
fn format_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
