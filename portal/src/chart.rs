//! Server-side SVG bar charts for the usage page and the admin dashboard: pure functions
//! that render a chart as a string, with no script and no inline style (the CSP allows
//! neither): the look comes from the `.chart` classes of `portal.css` and presentation
//! attributes.
//!
//! Each chart is `<svg role="img" aria-labelledby="…">` with a `<title>` and a `<desc>`, a
//! y axis of a few round ticks with gridlines, x labels thinned to fit, a legend when there
//! are several series, and after it the same numbers as a table in a `<details>` for
//! screen readers and for copying. Every text is XML-escaped here, so templates embed the
//! result with `|safe`.

use std::fmt::Write;

/// Width of the drawing (user units of the `viewBox`).
const WIDTH: f64 = 720.0;
/// Height of the drawing.
const HEIGHT: f64 = 260.0;
/// Room left of the plot for the y labels.
const LEFT: f64 = 48.0;
/// Room right of the plot.
const RIGHT: f64 = 12.0;
/// Room above the plot for the legend.
const TOP: f64 = 28.0;
/// Room below the plot for the x labels.
const BOTTOM: f64 = 36.0;
/// Estimated width of one character of a label (12 px text).
const CHAR_WIDTH: f64 = 7.0;
/// Least room between two x labels.
const LABEL_GAP: f64 = 12.0;

/// What a chart shows, apart from its numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chart<'a> {
    /// Base of the ids of the chart's elements (`{id}-title`, `{id}-desc`); unique on the
    /// page.
    pub(crate) id: &'a str,
    /// Its title (what the chart shows).
    pub(crate) title: &'a str,
    /// A sentence describing it for screen readers.
    pub(crate) desc: &'a str,
    /// Heading of the x column of the table (e.g. "Day").
    pub(crate) x_name: &'a str,
    /// Text of the `<summary>` that opens the table.
    pub(crate) table_label: &'a str,
    /// One label per bar (e.g. dates).
    pub(crate) labels: &'a [String],
}

/// One series of values, one per label.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series<'a> {
    /// Its name (legend and table heading).
    pub(crate) name: &'a str,
    /// Its classes from `portal.css`: `bar`, `bar alt`, `bar bad`.
    pub(crate) class: &'a str,
    /// Its values; missing ones count as 0.
    pub(crate) values: &'a [u64],
}

/// A bar chart of one series (e.g. reads per day).
pub(crate) fn daily_bars(chart: &Chart<'_>, series: &Series<'_>) -> String {
    render(chart, std::slice::from_ref(series))
}

/// A bar chart of several series stacked on each other (e.g. committed and refused loads
/// per day), with a legend.
pub(crate) fn stacked_bars(chart: &Chart<'_>, series: &[Series<'_>]) -> String {
    render(chart, series)
}

/// Escape a text for XML (element content and attribute values alike).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The top of the y axis and the step between ticks, both round (1, 2 or 5 times a power
/// of ten), with 2–5 steps up to a top at or above `max`.
pub(crate) fn scale(max: u64) -> (u64, u64) {
    if max == 0 {
        return (1, 1);
    }
    let rough = max.div_ceil(4).max(1);
    let mut power = 1u64;
    while power.saturating_mul(10) <= rough {
        power *= 10;
    }
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10 * power);
    (max.div_ceil(step) * step, step)
}

/// Height in user units of a bar of `value` on a plot `plot_h` high topping at `top`.
pub(crate) fn bar_height(value: u64, top: u64, plot_h: f64) -> f64 {
    if top == 0 {
        return 0.0;
    }
    value as f64 / top as f64 * plot_h
}

/// Every how many bars an x label fits, for `n` bars of labels up to `longest` characters.
fn label_every(n: usize, longest: usize, plot_w: f64) -> usize {
    if n == 0 {
        return 1;
    }
    let needed = longest as f64 * CHAR_WIDTH + LABEL_GAP;
    let slot = plot_w / n as f64;
    ((needed / slot).ceil() as usize).max(1)
}

fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn value(series: &Series<'_>, i: usize) -> u64 {
    series.values.get(i).copied().unwrap_or(0)
}

fn render(chart: &Chart<'_>, series: &[Series<'_>]) -> String {
    let n = chart.labels.len();
    let totals: Vec<u64> = (0..n)
        .map(|i| series.iter().map(|s| value(s, i)).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let (top, step) = scale(max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bottom = TOP + plot_h;
    let id = escape(chart.id);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" focusable=\"false\">\
         <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>",
        w = num(WIDTH),
        h = num(HEIGHT),
        title = escape(chart.title),
        desc = escape(chart.desc),
    );
    // Gridlines and y ticks.
    let mut tick = 0;
    while tick <= top {
        let y = bottom - bar_height(tick, top, plot_h);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{tick}</text>",
            x1 = num(LEFT),
            x2 = num(LEFT + plot_w),
            y = num(y),
            tx = num(LEFT - 6.0),
            ty = num(y + 4.0),
        );
        tick += step;
    }
    // Bars.
    if n > 0 {
        let slot = plot_w / n as f64;
        let gap = (slot * 0.2).min(8.0);
        let bar_w = (slot - gap).max(1.0);
        let every = label_every(
            n,
            chart
                .labels
                .iter()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0),
            plot_w,
        );
        for (i, label) in chart.labels.iter().enumerate() {
            let x = LEFT + i as f64 * slot + gap / 2.0;
            let mut base = bottom;
            for s in series {
                let v = value(s, i);
                if v == 0 {
                    continue;
                }
                let h = bar_height(v, top, plot_h);
                base -= h;
                let _ = write!(
                    svg,
                    "<rect class=\"{class}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\">\
                     <title>{label}: {name} {v}</title></rect>",
                    class = escape(s.class),
                    x = num(x),
                    y = num(base),
                    w = num(bar_w),
                    h = num(h),
                    label = escape(label),
                    name = escape(s.name),
                );
            }
            if i % every == 0 {
                let _ = write!(
                    svg,
                    "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\">{label}</text>",
                    x = num(x + bar_w / 2.0),
                    y = num(bottom + 18.0),
                    label = escape(label),
                );
            }
        }
    }
    // Axes.
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\"/>\
         <line class=\"axis\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\"/>",
        l = num(LEFT),
        t = num(TOP),
        b = num(bottom),
        r = num(LEFT + plot_w),
    );
    // Legend, when the series need telling apart.
    if series.len() > 1 {
        let mut x = LEFT;
        for s in series {
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x}\" y=\"8\" width=\"12\" height=\"12\"/>\
                 <text x=\"{tx}\" y=\"18\">{name}</text>",
                class = escape(s.class),
                x = num(x),
                tx = num(x + 16.0),
                name = escape(s.name),
            );
            x += 16.0 + s.name.chars().count() as f64 * CHAR_WIDTH + 20.0;
        }
    }
    svg.push_str("</svg>");
    svg.push_str(&table(chart, series));
    svg
}

/// The numbers of the chart as a table in a `<details>`.
fn table(chart: &Chart<'_>, series: &[Series<'_>]) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "<details><summary>{label}</summary><div class=\"table-wrap\"><table>\
         <caption>{title}</caption><thead><tr><th scope=\"col\">{x}</th>",
        label = escape(chart.table_label),
        title = escape(chart.title),
        x = escape(chart.x_name),
    );
    for s in series {
        let _ = write!(t, "<th scope=\"col\" class=\"num\">{}</th>", escape(s.name));
    }
    t.push_str("</tr></thead><tbody>");
    for (i, label) in chart.labels.iter().enumerate() {
        let _ = write!(t, "<tr><th scope=\"row\">{}</th>", escape(label));
        for s in series {
            let _ = write!(t, "<td class=\"num\">{}</td>", value(s, i));
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table></div></details>");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart<'a>(labels: &'a [String]) -> Chart<'a> {
        Chart {
            id: "c",
            title: "Reads <per> day",
            desc: "Bars & more",
            x_name: "Day",
            table_label: "Numbers",
            labels,
        }
    }

    /// The `height` of every `<rect class="bar...">` of a bar (not the legend's).
    fn heights(svg: &str) -> Vec<f64> {
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.contains("<title>"))
            .map(|r| {
                let at = r.find("height=\"").unwrap() + 8;
                r[at..at + r[at..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn every_text_is_escaped() {
        let labels = vec!["<a&b>".to_owned()];
        let s = Series {
            name: "\"x\" 'y'",
            class: "bar",
            values: &[3],
        };
        let svg = daily_bars(&chart(&labels), &s);
        assert!(svg.contains("<title id=\"c-title\">Reads &lt;per&gt; day</title>"));
        assert!(svg.contains("<desc id=\"c-desc\">Bars &amp; more</desc>"));
        assert!(svg.contains("&lt;a&amp;b&gt;"));
        assert!(svg.contains("&quot;x&quot; &#39;y&#39;"));
        assert!(!svg.contains("<a&b>") && !svg.contains("\"x\""));
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP forbids it"
        );
        assert!(svg.contains("role=\"img\" aria-labelledby=\"c-title c-desc\""));
    }

    #[test]
    fn an_empty_series_draws_axes_and_an_empty_table() {
        let svg = daily_bars(
            &chart(&[]),
            &Series {
                name: "reads",
                class: "bar",
                values: &[],
            },
        );
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
        assert_eq!(heights(&svg).len(), 0);
        assert!(svg.contains("class=\"axis\""));
        assert!(svg.contains("<tbody></tbody>"));
        // All zero: no bars, a scale of 0–1.
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let svg = daily_bars(
            &chart(&labels),
            &Series {
                name: "reads",
                class: "bar",
                values: &[0, 0],
            },
        );
        assert_eq!(heights(&svg).len(), 0);
        assert!(svg.contains(">1</text>"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(scale(0), (1, 1));
        assert_eq!(scale(1), (1, 1));
        assert_eq!(scale(3), (3, 1));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(10), (10, 5));
        assert_eq!(scale(37), (40, 10));
        assert_eq!(scale(100), (100, 50));
        assert_eq!(scale(101), (150, 50));
        assert_eq!(scale(999), (1000, 500));
        assert_eq!(scale(12_345), (15_000, 5000));
        for max in 1..2000 {
            let (top, step) = scale(max);
            assert!(top >= max && top % step == 0, "{max}: {top}/{step}");
            assert!((1..=5).contains(&(top / step)), "{max}: {top}/{step}");
        }
    }

    #[test]
    fn bars_are_proportional() {
        let labels: Vec<String> = (1..=4).map(|d| format!("d{d}")).collect();
        let svg = daily_bars(
            &chart(&labels),
            &Series {
                name: "reads",
                class: "bar",
                values: &[10, 20, 0, 40],
            },
        );
        let h = heights(&svg);
        assert_eq!(h.len(), 3);
        assert!((h[1] / h[0] - 2.0).abs() < 0.02, "{h:?}");
        assert!((h[2] / h[0] - 4.0).abs() < 0.02, "{h:?}");
        // 40 is the top of the scale: the whole plot.
        assert!((h[2] - (HEIGHT - TOP - BOTTOM)).abs() < 0.1);
        assert_eq!(bar_height(50, 100, 200.0), 100.0);
        // The numbers are in the table too.
        assert!(svg.contains("<th scope=\"row\">d4</th><td class=\"num\">40</td>"));
    }

    #[test]
    fn stacked_series_add_up_and_have_a_legend() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let svg = stacked_bars(
            &chart(&labels),
            &[
                Series {
                    name: "committed",
                    class: "bar alt",
                    values: &[3, 1],
                },
                Series {
                    name: "refused",
                    class: "bar bad",
                    values: &[1, 0],
                },
            ],
        );
        let h = heights(&svg);
        assert_eq!(h.len(), 3);
        // a = 3 + 1 = 4 is the top: together the two bars fill the plot.
        assert!((h[0] + h[1] - (HEIGHT - TOP - BOTTOM)).abs() < 0.2, "{h:?}");
        assert!(svg.contains("class=\"bar bad\"") && svg.contains(">refused</text>"));
        assert!(svg.contains("<td class=\"num\">3</td><td class=\"num\">1</td>"));
    }

    #[test]
    fn x_labels_are_thinned_to_fit() {
        let labels: Vec<String> = (0..60).map(|d| format!("2026-01-{d:02}")).collect();
        let values = vec![1u64; 60];
        let svg = daily_bars(
            &chart(&labels),
            &Series {
                name: "reads",
                class: "bar",
                values: &values,
            },
        );
        let shown = svg.matches("text-anchor=\"middle\"").count();
        assert!(shown > 3 && shown < 15, "{shown} labels");
        assert_eq!(label_every(5, 10, 660.0), 1);
    }
}
