//! The search box's help and error line: the query syntax ([`crate::query`]) as a one-line hint
//! that opens into a table, and what is wrong with the query typed, announced when it appears
//! (the box points at both with `aria-describedby`).

use leptos::prelude::*;

use super::Ctx;

/// Each example of the syntax and what it means.
const SYNTAX: [(&str, &str); 6] = [
    ("red car -night", "like “red car”, unlike “night”"),
    ("2:dog + beach", "“dog” counts twice as much as “beach”"),
    (
        "0.5:beach  -2:night",
        "a weight from -10 to 10 before a term",
    ),
    (
        "similar:ID  -similar:ID",
        "like (or unlike) the indexed image ID",
    ),
    (
        "dog -\"night sky\"",
        "quotes group words and keep + and - as text",
    ),
    (
        "red car parked on a street",
        "no marks: one sentence, as typed",
    ),
];

/// Under the search box: the error line and the syntax help.
#[component]
pub fn QueryHelp(ctx: Ctx) -> impl IntoView {
    view! {
        <p id="query-error" role="alert">{move || ctx.query_error.get()}</p>
        <details id="syntax" class="syntax">
            <summary id="query-hint">
                "Combine terms: "<code>"red car -night"</code>", "<code>"2:dog + beach"</code>", "
                <code>"similar:ID"</code>
            </summary>
            <table>
                <thead><tr><th scope="col">"You type"</th><th scope="col">"It finds images"</th></tr></thead>
                <tbody>
                    {SYNTAX.map(|(typed, means)| view! { <tr><td><code>{typed}</code></td><td>{means}</td></tr> })}
                </tbody>
            </table>
            <p>
                "A term runs to the next “ + ” or the next word starting with -, +, a weight or "
                "similar:. Up to 8 terms, at least one positive. Terms with words need the model "
                "in this browser."
            </p>
        </details>
    }
}
