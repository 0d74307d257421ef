//! TAPIS's rules as data: per document type the deadlines for conditions and opinions
//! (working or calendar days) and the shortest consultation; the institutions always asked
//! and those asked when the territory crosses a restriction layer; the days the working-day
//! calendar adds ([`crate::calendar`]: `holidays` and `working_days` are its entries, shared
//! with every module). An admin changes them with an RFC 7396 merge patch; every change is a
//! new version (forward only: a request keeps the due date it was given). The defaults name
//! their source, for checking ([`defaults`]).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calendar::{Calendar, Date};

use super::model::DocType;

/// A deadline: `days`, counted in working days or calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// How many days (1–365).
    pub days: u32,
    /// Working days (the Nth working day after sending) or calendar days (the sending day
    /// plus N, moved to the next working day).
    pub working_days: bool,
}

impl Deadline {
    /// The due date of a request sent on `sent` (a Europe/Riga date).
    pub fn due(self, cal: &Calendar, sent: NaiveDate) -> NaiveDate {
        if self.working_days {
            cal.add_working_days(sent, self.days)
        } else {
            cal.next_working(sent + chrono::Days::new(u64::from(self.days)))
        }
    }
}

/// The rules of one document type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeRules {
    /// Institutions' conditions are due in.
    pub conditions_days: Deadline,
    /// Institutions' opinions are due in.
    pub opinion_days: Deadline,
    /// The shortest public consultation, in calendar days (0 allowed).
    pub consultation_min_days: u32,
}

/// A restriction layer: an institution is asked when the territory crosses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Code.
    pub code: String,
    /// What it is (e.g. a protected nature area).
    pub title: String,
    /// The institution asked.
    pub institution: String,
    /// Its extent (GeoJSON Polygon or MultiPolygon, WGS 84).
    #[schema(value_type = Object)]
    pub geometry: Value,
}

/// Which institutions are asked.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionRules {
    /// Always asked, per document type.
    pub always: BTreeMap<String, Vec<String>>,
    /// Asked when the territory crosses the layer.
    pub layers: Vec<Layer>,
}

/// The rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The version (set by the server).
    #[serde(default)]
    pub version: i64,
    /// Days off added to the law's holidays (`YYYY-MM-DD`): the calendar's entries.
    #[serde(default)]
    pub holidays: Vec<Date>,
    /// Working days moved to a weekend or holiday (`YYYY-MM-DD`): the calendar's entries.
    #[serde(default)]
    pub working_days: Vec<Date>,
    /// Per document type.
    pub document_types: BTreeMap<String, TypeRules>,
    /// Institutions asked.
    pub institutions: InstitutionRules,
    /// Days a coordination link stays valid after it is sent (it ends with the answer).
    pub link_days: u32,
    /// Days before the due date that an institution is reminded (once), and once more
    /// when overdue.
    pub reminder_days: u32,
    /// Whether an institution's silence past its due date counts as consent at approval:
    /// `false` (the default) refuses approval while any coordination request is
    /// unanswered; `true` refuses it only while one is unanswered and not yet due.
    #[serde(default)]
    pub silence_is_consent: bool,
    /// Where each rule comes from.
    pub sources: BTreeMap<String, String>,
}

/// The shipped rules. The deadlines and consultation lengths are those of Cabinet
/// Regulation No. 628 of 14 October 2014 as this module's authors read it: named in
/// `sources` so an administrator checks them against the consolidated text and patches
/// what differs.
pub fn defaults() -> Rules {
    let t = |c: u32, o: u32, min: u32| TypeRules {
        conditions_days: Deadline {
            days: c,
            working_days: false,
        },
        opinion_days: Deadline {
            days: o,
            working_days: false,
        },
        consultation_min_days: min,
    };
    let mut document_types = BTreeMap::new();
    document_types.insert("development_strategy".to_owned(), t(30, 30, 28));
    document_types.insert("development_programme".to_owned(), t(30, 30, 28));
    document_types.insert("territorial_plan".to_owned(), t(30, 30, 28));
    document_types.insert("local_plan".to_owned(), t(30, 30, 28));
    document_types.insert("detailed_plan".to_owned(), t(30, 30, 21));
    document_types.insert("thematic_plan".to_owned(), t(30, 30, 28));
    let mut sources = BTreeMap::new();
    sources.insert(
        "document_types".into(),
        "Ministru kabineta 2014. gada 14. oktobra noteikumi Nr. 628 \"Noteikumi par pašvaldību \
         teritorijas attīstības plānošanas dokumentiem\" (institūciju nosacījumu un atzinumu \
         termiņi, publiskās apspriešanas ilgums): check against the consolidated text"
            .into(),
    );
    sources.insert(
        "holidays".into(),
        format!(
            "{}; the entries are days a separate act adds",
            crate::calendar::HOLIDAYS_LAW
        ),
    );
    sources.insert(
        "deadlines".into(),
        format!(
            "{}: a term ending on a non-working day ends on the next working day",
            crate::calendar::TERMS_LAW
        ),
    );
    sources.insert("link_days".into(), "DAGR default".into());
    sources.insert("reminder_days".into(), "DAGR default".into());
    sources.insert(
        "silence_is_consent".into(),
        "DAGR default (false: approval waits for every institution's answer); whether the \
         planning law lets silence past the due date count as no objection is to be checked \
         against Cabinet Regulation No. 628 and patched"
            .into(),
    );
    sources.insert(
        "institutions".into(),
        "DAGR demo: synthetic restriction layers".into(),
    );
    Rules {
        version: 0,
        holidays: Vec::new(),
        working_days: Vec::new(),
        document_types,
        institutions: InstitutionRules::default(),
        link_days: 60,
        reminder_days: 3,
        silence_is_consent: false,
        sources,
    }
}

impl Rules {
    /// The rules of `t` (every type has rules: [`Rules::check`]).
    pub fn of(&self, t: DocType) -> TypeRules {
        self.document_types
            .get(t.as_str())
            .cloned()
            .unwrap_or_else(|| defaults().document_types[t.as_str()].clone())
    }

    /// Check the rules after a patch; the reason names the field.
    pub fn check(&self, institutions: &[String]) -> Result<(), (String, String)> {
        let bad = |f: &str, r: String| Err((f.to_owned(), r));
        for t in DocType::ALL {
            let Some(r) = self.document_types.get(t.as_str()) else {
                return bad("document_types", format!("`{}` has no rules", t.as_str()));
            };
            for (name, d) in [
                ("conditions_days", r.conditions_days),
                ("opinion_days", r.opinion_days),
            ] {
                if !(1..=365).contains(&d.days) {
                    return bad(
                        &format!("document_types.{}.{name}", t.as_str()),
                        "days are 1 to 365".into(),
                    );
                }
            }
            if r.consultation_min_days > 365 {
                return bad(
                    &format!("document_types.{}.consultation_min_days", t.as_str()),
                    "at most 365".into(),
                );
            }
        }
        if let Some(k) = self
            .document_types
            .keys()
            .find(|k| DocType::parse(k).is_none())
        {
            return bad("document_types", format!("`{k}` is no document type"));
        }
        if self.holidays.len() + self.working_days.len() > 2_000 {
            return bad("holidays", "at most 2 000 days".into());
        }
        if let Some(d) = self.holidays.iter().find(|d| self.working_days.contains(d)) {
            return bad("holidays", format!("{d} is also a working day"));
        }
        if let Some(d) = self
            .holidays
            .iter()
            .chain(&self.working_days)
            .find(|d| !crate::calendar::YEARS.contains(&d.0.year()))
        {
            return bad("holidays", format!("{d} is out of range"));
        }
        let known = |c: &String| institutions.contains(c);
        for (t, list) in &self.institutions.always {
            if DocType::parse(t).is_none() {
                return bad("institutions.always", format!("`{t}` is no document type"));
            }
            if let Some(c) = list.iter().find(|c| !known(c)) {
                return bad("institutions.always", format!("no institution `{c}`"));
            }
        }
        if self.institutions.layers.len() > 100 {
            return bad("institutions.layers", "at most 100 layers".into());
        }
        for l in &self.institutions.layers {
            if !known(&l.institution) {
                return bad(
                    "institutions.layers",
                    format!("layer {}: no institution `{}`", l.code, l.institution),
                );
            }
            if let Err(e) = super::geometry::parse(&l.geometry) {
                return bad("institutions.layers", format!("layer {}: {}", l.code, e.0));
            }
        }
        if !(1..=365).contains(&self.link_days) {
            return bad("link_days", "1 to 365".into());
        }
        if self.reminder_days > 60 {
            return bad("reminder_days", "at most 60".into());
        }
        Ok(())
    }
}

/// Apply an RFC 7396 merge patch to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn due_dates_count_working_or_calendar_days() {
        let cal = Calendar::law_only();
        let w = Deadline {
            days: 5,
            working_days: true,
        };
        // Thursday 17 December 2026 + 5 working days: Fri 18, Mon 21, Tue 22, Wed 23, then
        // 24–26 are holidays, Sunday 27: Monday 28.
        assert_eq!(w.due(&cal, d("2026-12-17")), d("2026-12-28"));
        // Across the year end: Monday 28 December + 3 working days: Tue 29, Wed 30, (31
        // and 1 January off, weekend) Monday 4 January.
        let w3 = Deadline {
            days: 3,
            working_days: true,
        };
        assert_eq!(w3.due(&cal, d("2026-12-28")), d("2027-01-04"));
        // Calendar days landing on a Saturday move to Monday.
        let c = Deadline {
            days: 9,
            working_days: false,
        };
        assert_eq!(c.due(&cal, d("2026-12-10")), d("2026-12-21"));
        // Landing on Christmas Eve moves past the holidays and the weekend.
        let c14 = Deadline {
            days: 14,
            working_days: false,
        };
        assert_eq!(c14.due(&cal, d("2026-12-10")), d("2026-12-28"));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        merge_patch(&mut t, &json!({"a": [3]}));
        assert_eq!(t, json!({"a": [3]}));
    }

    #[test]
    fn the_defaults_pass_their_own_check() {
        defaults().check(&[]).unwrap();
    }
}
