//! The month's service levels ([`Action::Service`](crate::console::roles::Action)): the whole
//! connection against each CoCo limit, then each holdername's completion and views (a scheme
//! admin: theirs), with a chart of the share within each limit (SVG, no script).

use std::collections::BTreeMap;

use http::StatusCode;
use uuid::Uuid;

use crate::console::page::Page;
use crate::console::respond::{plain, Resp};
use crate::console::roles;
use crate::console::ConsoleError;
use crate::sla::{SchemeLevels, Series};

/// The service levels of `?month=YYYY-MM` (this month by default).
pub(crate) async fn page(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let month = p
        .query("month")
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
    let report = match crate::sla::report(
        &p.console.store,
        &month,
        crate::now_micros(),
        p.console.config.sla.go_live,
    )
    .await
    {
        Ok(r) => r,
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "month: YYYY-MM\n")),
    };
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for (name, s) in [
        ("ACK (CoCo2.1.1)", &report.ack),
        ("Completion (CoCo2.1.2)", &report.completion),
        ("View (CoCo2.1.3)", &report.view),
    ] {
        rows.push(series_row(name.to_owned(), s));
        bars.push((name, s.within_limit, s.required));
    }
    let a = &report.availability;
    rows.push(vec![
        "Availability (CoCo2.1.5)".into(),
        format!("{} of {} min", a.minutes_up, a.minutes_elapsed),
        String::new(),
        String::new(),
        format!("{:.3}%", a.ratio * 100.0),
        "99.5%".into(),
        if a.met { "met".into() } else { "MISSED".into() },
    ]);
    bars.push(("Availability (CoCo2.1.5)", a.ratio, 0.995));
    rows.extend(by_holdername(p, &report.by_holdername).await?);
    p.table(
        "/sla",
        &format!("Service levels, {month}"),
        "The whole connection first, then each holdername: its matching finds' completion (ACK to its PeIs registered) and its views served. Availability is the endpoint's, shared by every holdername. Each bar is the share within the CoCo limit; the line is what is required.",
        &["Standard", "Count", "p99.9", "Target / limit", "Within limit", "Required", ""],
        rows,
        "",
        Some((chart(&bars), format!("Share within each limit, {month}"))),
    )
}

/// The month's completion and view rows for each holdername (a scheme admin: theirs).
async fn by_holdername(
    p: &Page<'_>,
    levels: &BTreeMap<Uuid, SchemeLevels>,
) -> Result<Vec<Vec<String>>, ConsoleError> {
    let names = super::scheme_names(p).await?;
    let mut rows = Vec::new();
    for (h, l) in levels {
        if !roles::sees_holdername(&p.me.user, *h) {
            continue;
        }
        for (name, s) in [
            ("Completion (CoCo2.1.2)", &l.completion),
            ("View (CoCo2.1.3)", &l.view),
        ] {
            let Some(s) = s else { continue };
            let scheme = names.get(h).map(String::as_str).unwrap_or("");
            rows.push(series_row(format!("{name}, holdername {h} ({scheme})"), s));
        }
    }
    Ok(rows)
}

/// A row of the service-levels table: `name`, then how `s` fared.
fn series_row(name: String, s: &Series) -> Vec<String> {
    vec![
        name,
        s.count.to_string(),
        format!("{:.1} ms", s.p999_ms),
        format!("{} s / {} s", s.target_s, s.limit_s),
        format!("{:.3}%", s.within_limit * 100.0),
        format!("{:.1}%", s.required * 100.0),
        if s.met { "met".into() } else { "MISSED".into() },
    ]
}

/// An SVG bar chart of the share within each limit against what is required (no script).
fn chart(bars: &[(&str, f64, f64)]) -> String {
    let (w, row) = (640.0, 34.0);
    let h = row * bars.len() as f64 + 30.0;
    let x0 = 200.0;
    let scale = |v: f64| x0 + (w - x0 - 20.0) * v.clamp(0.0, 1.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Share within each CoCo limit">"#
    );
    for (i, (name, got, need)) in bars.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let colour = if got >= need { "#1e7b34" } else { "#a40000" };
        s.push_str(&format!(
            r##"<text x="0" y="{ty}" font-size="13" fill="#1b1b1b">{name}</text><rect x="{x0}" y="{y}" width="{bw:.1}" height="20" fill="{colour}"/><line x1="{lx:.1}" x2="{lx:.1}" y1="{ly1}" y2="{ly2}" stroke="#000" stroke-width="2"/><text x="{tx:.1}" y="{ty}" font-size="12" fill="#1b1b1b">{pct:.2}%</text>"##,
            ty = y + 15.0,
            bw = scale(*got) - x0,
            lx = scale(*need),
            ly1 = y - 3.0,
            ly2 = y + 23.0,
            tx = (scale(*got) - 60.0).max(x0 + 4.0),
            pct = got * 100.0,
            name = minijinja::HtmlEscape(name),
        ));
    }
    s.push_str("</svg>");
    s
}
