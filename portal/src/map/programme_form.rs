//! The programme form and the scoresheet form as typed: plain fields and repeated lines
//! (`{group}_{field}_{N}`: eligibility conditions, criteria, reports due, payment approval
//! levels), read into the service's [`NewProgramme`] and [`Criterion`] list. Only what is
//! no number, date or known choice is refused here; every rule is the service's.

use std::collections::BTreeMap;

use dagr_admin_api::governance::GovError;
use dagr_admin_api::map::MapRole;
use dagr_admin_api::map::model::{
    AidRegime, ApprovalLevel, Condition, Criterion, EligibilityInput, NewProgramme, ReportDue,
};

use super::{MapText, parse_amount, parse_day};
use crate::web::riga_day_start;

/// Most lines of a group the forms read (the service allows at most 50 items of a kind).
pub(super) const MAX_LINES: usize = 50;

/// One line of a repeated group as typed, by position.
#[derive(Debug, Default, Clone)]
pub(super) struct Line {
    /// Its number in the form (field names end in `_{i}`).
    pub(super) i: usize,
    pub(super) a: String,
    pub(super) b: String,
    pub(super) c: String,
    pub(super) d: String,
}

/// A group of lines: its name prefix and its fields in order.
pub(super) struct Group {
    pub(super) prefix: &'static str,
    pub(super) fields: &'static [&'static str],
    /// The service's name for what the group gives.
    pub(super) service_field: &'static str,
}

pub(super) const CONDITIONS: Group = Group {
    prefix: "cond",
    fields: &["name", "predicate"],
    service_field: "eligibility",
};
pub(super) const CRITERIA: Group = Group {
    prefix: "crit",
    fields: &["code", "weight", "min", "max"],
    service_field: "criteria",
};
pub(super) const SCHEDULE: Group = Group {
    prefix: "rep",
    fields: &["kind", "months"],
    service_field: "report_schedule",
};
pub(super) const LEVELS: Group = Group {
    prefix: "level",
    fields: &["role", "from"],
    service_field: "approval_levels",
};

impl Group {
    fn name(&self, field: &str, i: usize) -> String {
        format!("{}_{field}_{i}", self.prefix)
    }

    /// Whether a refusal of `field` is about this group.
    pub(super) fn owns(&self, field: &str) -> bool {
        field == self.service_field || field.starts_with(&format!("{}_", self.prefix))
    }

    /// The values of line `i` (empty strings for fields not typed).
    fn values(&self, f: &BTreeMap<String, String>, i: usize) -> [String; 4] {
        let mut v: [String; 4] = Default::default();
        for (slot, field) in v.iter_mut().zip(self.fields) {
            *slot = f
                .get(&self.name(field, i))
                .map(|s| s.trim().to_owned())
                .unwrap_or_default();
        }
        v
    }

    /// The lines to show: every typed one in its place, at least `at_least` and `extra`
    /// empty ones more after the last typed (at most [`MAX_LINES`]).
    pub(super) fn lines(
        &self,
        f: &BTreeMap<String, String>,
        at_least: usize,
        extra: usize,
    ) -> Vec<Line> {
        let typed = (0..MAX_LINES)
            .rev()
            .find(|&i| self.values(f, i).iter().any(|v| !v.is_empty()))
            .map_or(0, |i| i + 1);
        let n = (typed + extra).max(at_least).min(MAX_LINES);
        (0..n)
            .map(|i| {
                let [a, b, c, d] = self.values(f, i);
                Line { i, a, b, c, d }
            })
            .collect()
    }

    /// The typed lines (not all empty), with their numbers.
    fn typed(&self, f: &BTreeMap<String, String>) -> Vec<(usize, [String; 4])> {
        (0..MAX_LINES)
            .map(|i| (i, self.values(f, i)))
            .filter(|(_, v)| v.iter().any(|x| !x.is_empty()))
            .collect()
    }

    /// Lines from the service's items (for a form showing what is set now).
    pub(super) fn fill(&self, items: Vec<[String; 4]>, extra: usize) -> Vec<Line> {
        let n = items.len();
        items
            .into_iter()
            .chain(std::iter::repeat_with(Default::default).take(extra))
            .take(MAX_LINES.max(n))
            .enumerate()
            .map(|(i, [a, b, c, d])| Line { i, a, b, c, d })
            .collect()
    }
}

fn invalid(field: &str, raw: &str, why: &str) -> GovError {
    GovError::Invalid {
        field: field.to_owned(),
        reason: format!("`{raw}` {why}"),
    }
}

fn get<'a>(f: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(|v| v.trim()).unwrap_or_default()
}

/// A number typed in a form (comma or point), or the refusal of `field`.
fn number(t: &MapText, field: &str, raw: &str) -> Result<f64, GovError> {
    parse_amount(raw).ok_or_else(|| invalid(field, raw, t.not_a_number))
}

/// The criteria of the scoresheet lines: code, weight, lowest points (0 when empty) and
/// highest points.
pub(super) fn criteria(
    t: &MapText,
    f: &BTreeMap<String, String>,
) -> Result<Vec<Criterion>, GovError> {
    CRITERIA
        .typed(f)
        .into_iter()
        .map(|(i, [code, weight, min, max])| {
            let name = |field: &str| CRITERIA.name(field, i);
            Ok(Criterion {
                weight: number(t, &name("weight"), &weight)?,
                min: if min.is_empty() {
                    0.0
                } else {
                    number(t, &name("min"), &min)?
                },
                max: number(t, &name("max"), &max)?,
                code,
            })
        })
        .collect()
}

/// The programme of the form.
pub(super) fn new_programme(
    t: &MapText,
    f: &BTreeMap<String, String>,
) -> Result<NewProgramme, GovError> {
    let amount = |field: &str| {
        let raw = get(f, field);
        parse_amount(raw).ok_or_else(|| invalid(field, raw, t.not_an_amount))
    };
    let day = |field: &str| {
        let raw = get(f, field);
        parse_day(raw).ok_or_else(|| invalid(field, raw, t.not_a_date))
    };
    let rate = match get(f, "co_financing_rate") {
        "" => None,
        raw => Some(number(t, "co_financing_rate", raw)? / 100.0),
    };
    let opens = riga_day_start(day("opens_at")?);
    let closes_day = day("closes_at")?;
    // The last day counts whole: applications are taken until the next Latvian midnight.
    let closes = riga_day_start(closes_day.succ_opt().unwrap_or(closes_day));
    let regime_raw = get(f, "aid_regime");
    let aid_regime = AidRegime::parse(regime_raw)
        .ok_or_else(|| invalid("aid_regime", regime_raw, t.not_a_choice))?;
    let evaluators_raw = get(f, "evaluators_per_application");
    let evaluators_per_application = evaluators_raw
        .parse::<u32>()
        .map_err(|_| invalid("evaluators_per_application", evaluators_raw, t.not_a_number))?;
    let eligibility = CONDITIONS
        .typed(f)
        .into_iter()
        .map(|(i, [name, predicate, ..])| {
            if predicate.is_empty() {
                return Err(GovError::Invalid {
                    field: CONDITIONS.name("predicate", i),
                    reason: format!("{} {}", t.condition_without_predicate, i + 1),
                });
            }
            Ok(Condition {
                name: if name.is_empty() {
                    format!("condition {}", i + 1)
                } else {
                    name
                },
                predicate,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report_schedule = SCHEDULE
        .typed(f)
        .into_iter()
        .map(|(i, [kind, months, ..])| {
            let field = SCHEDULE.name("months", i);
            Ok(ReportDue {
                months_after_contract: months
                    .parse::<u32>()
                    .map_err(|_| invalid(&field, &months, t.not_a_number))?,
                kind,
            })
        })
        .collect::<Result<Vec<_>, GovError>>()?;
    let levels = LEVELS
        .typed(f)
        .into_iter()
        .map(|(i, [role, from, ..])| {
            Ok(ApprovalLevel {
                role: MapRole::parse(&role)
                    .ok_or_else(|| invalid(&LEVELS.name("role", i), &role, t.not_a_choice))?,
                from_amount: if from.is_empty() {
                    0.0
                } else {
                    parse_amount(&from)
                        .ok_or_else(|| invalid(&LEVELS.name("from", i), &from, t.not_an_amount))?
                },
            })
        })
        .collect::<Result<Vec<_>, GovError>>()?;
    Ok(NewProgramme {
        title: get(f, "title").to_owned(),
        budget: amount("budget")?,
        max_grant: amount("max_grant")?,
        co_financing_rate: rate,
        opens_at: opens.to_rfc3339(),
        closes_at: closes.to_rfc3339(),
        aid_regime,
        eligibility: EligibilityInput::Many(eligibility),
        criteria: criteria(t, f)?,
        evaluators_per_application,
        cost_categories: get(f, "cost_categories")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        approval_levels: (!levels.is_empty()).then_some(levels),
        report_schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("title", " Eksports 2027 "),
            ("budget", "1 000 000"),
            ("max_grant", "50000,50"),
            ("co_financing_rate", "85"),
            ("opens_at", "2026-01-15"),
            ("closes_at", "2026-07-31"),
            ("aid_regime", "de_minimis"),
            ("evaluators_per_application", "2"),
            ("cost_categories", "iekārtas\n\n apmācības \n"),
            ("cond_name_0", "active"),
            ("cond_predicate_0", "status = 'active'"),
            ("cond_name_2", ""),
            ("cond_predicate_2", "employees < 250"),
            ("crit_code_0", "quality"),
            ("crit_weight_0", "2"),
            ("crit_min_0", ""),
            ("crit_max_0", "10"),
            ("crit_code_1", "value"),
            ("crit_weight_1", "1,5"),
            ("crit_min_1", "1"),
            ("crit_max_1", "5"),
            ("rep_kind_0", "final"),
            ("rep_months_0", "12"),
        ]
    }

    #[test]
    fn the_programme_form_reads_into_the_services_input() {
        let t = MapText::get(Lang::En);
        let p = new_programme(t, &form(&complete())).unwrap();
        assert_eq!(p.title, "Eksports 2027");
        assert_eq!((p.budget, p.max_grant), (1_000_000.0, 50000.5));
        assert_eq!(p.co_financing_rate, Some(0.85));
        // Latvian days: winter midnight is 22:00 UTC the day before; the last day counts.
        assert_eq!(p.opens_at, "2026-01-14T22:00:00.000Z");
        assert_eq!(p.closes_at, "2026-07-31T21:00:00.000Z");
        assert_eq!(p.aid_regime.as_str(), "de_minimis");
        assert_eq!(p.evaluators_per_application, 2);
        assert_eq!(p.cost_categories, ["iekārtas", "apmācības"]);
        match &p.eligibility {
            EligibilityInput::Many(c) => {
                assert_eq!(c.len(), 2);
                assert_eq!(c[1].name, "condition 3");
                assert_eq!(c[1].predicate, "employees < 250");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.criteria.len(), 2);
        assert_eq!(
            (p.criteria[0].min, p.criteria[1].weight, p.criteria[1].min),
            (0.0, 1.5, 1.0)
        );
        assert_eq!(p.report_schedule[0].months_after_contract, 12);
        assert!(p.approval_levels.is_none(), "none typed: the default");
    }

    #[test]
    fn what_is_no_number_date_or_choice_is_refused_naming_the_field() {
        let t = MapText::get(Lang::En);
        for (field, value) in [
            ("budget", "a lot"),
            ("opens_at", "15.01.2026"),
            ("aid_regime", "Gift!"),
            ("evaluators_per_application", "two"),
            ("crit_max_1", "ten"),
            ("rep_months_0", "-1"),
            ("cond_predicate_0", ""),
        ] {
            let mut f = form(&complete());
            f.insert(field.to_owned(), value.to_owned());
            match new_programme(t, &f) {
                Err(GovError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut f = form(&complete());
        f.insert("level_role_0".into(), "boss".into());
        assert!(matches!(
            new_programme(t, &f),
            Err(GovError::Invalid { field, .. }) if field == "level_role_0"
        ));
    }

    #[test]
    fn lines_keep_their_places_and_offer_more() {
        let f = form(&complete());
        let lines = CONDITIONS.lines(&f, 2, 2);
        assert_eq!(lines.len(), 5, "typed up to line 3, two more");
        assert_eq!(lines[2].b, "employees < 250");
        assert!(lines[1].a.is_empty());
        assert_eq!(SCHEDULE.lines(&BTreeMap::new(), 3, 0).len(), 3);
        assert!(CRITERIA.owns("criteria") && CRITERIA.owns("crit_max_1"));
        assert!(!CRITERIA.owns("cost_categories"));
        let filled = CRITERIA.fill(vec![Default::default(); 2], 3);
        assert_eq!(filled.len(), 5);
        assert_eq!(filled[4].i, 4);
    }
}
