//! # Working days
//!
//! The Latvian working-day calendar, shared by the modules that count deadlines (MAP's
//! report due dates; TAPIS's opinions and consultations). A day is a working day unless it
//! is a Saturday, a Sunday or a public holiday; rows of `calendar_days` (an admin's,
//! [`api`]) override that for single days: a moved working day, or a holiday set by a
//! separate act.
//!
//! The public holidays are computed from the law "Par svētku, atceres un atzīmējamām
//! dienām" (On Holidays, Remembrance Days and Celebration Days), Section 1 — [`HOLIDAYS_LAW`]
//! — so they need no yearly data: the fixed dates, Good Friday, Easter Sunday and Monday
//! (Western Easter, computed), Whitsunday and Mother's Day (Sundays anyway), and its rule
//! that when 4 May or 18 November falls on a Saturday or Sunday the next working day is a
//! day off. What the law leaves to a year (the closing day of the Song and Dance Festival
//! and its carried day off, a working day moved by a Cabinet order) is data.

pub mod api;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use crate::governance::{GovError, GovResult};
use crate::store::StoreError;

/// The source of the computed holidays.
pub const HOLIDAYS_LAW: &str = "Par svētku, atceres un atzīmējamām dienām, 1. pants";
/// The source of the rule that a term ending on a non-working day ends on the next working
/// day.
pub const TERMS_LAW: &str = "Administratīvā procesa likums, 42.–43. pants";
/// Years the calendar answers for.
pub const YEARS: std::ops::RangeInclusive<i32> = 1991..=2200;

fn db(e: sqlx::Error) -> GovError {
    GovError::Store(StoreError::Database(e))
}

/// Latvian local time (Europe/Riga: UTC+2, UTC+3 in summer time, which runs from 01:00 UTC
/// on the last Sunday of March to 01:00 UTC on the last Sunday of October, Directive
/// 2000/84/EC).
pub fn riga(t: crate::model::Time) -> chrono::NaiveDateTime {
    let utc = chrono::DateTime::from_timestamp_millis(t.0)
        .unwrap_or_default()
        .naive_utc();
    let year = utc.year();
    let last_sunday_1am = |month: u32| {
        let last = NaiveDate::from_ymd_opt(year, month, 31).unwrap_or_default();
        let back = i64::from(last.weekday().num_days_from_sunday());
        (last - chrono::Duration::days(back))
            .and_hms_opt(1, 0, 0)
            .unwrap_or_default()
    };
    let summer = utc >= last_sunday_1am(3) && utc < last_sunday_1am(10);
    utc + chrono::Duration::hours(if summer { 3 } else { 2 })
}

/// The Latvian date of a time in Unix milliseconds.
pub fn riga_date(ms: i64) -> NaiveDate {
    riga(crate::model::Time(ms)).date()
}

/// The instant a Latvian local time names (an hour skipped in spring reads as winter time;
/// midnight is never skipped or repeated).
pub fn from_riga(local: chrono::NaiveDateTime) -> crate::model::Time {
    let at = |hours: i64| {
        crate::model::Time(
            (local - chrono::Duration::hours(hours))
                .and_utc()
                .timestamp_millis(),
        )
    };
    [3, 2]
        .into_iter()
        .map(at)
        .find(|&t| riga(t) == local)
        .unwrap_or_else(|| at(2))
}

/// The first instant of the Latvian day `day`.
pub fn riga_day_start(day: NaiveDate) -> crate::model::Time {
    from_riga(day.and_time(chrono::NaiveTime::MIN))
}

/// A date `YYYY-MM-DD` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<NaiveDate>()
            .map(Date)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a YYYY-MM-DD date")))
    }
}

impl utoipa::PartialSchema for Date {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .description(Some("a date, YYYY-MM-DD"))
            .into()
    }
}

impl utoipa::ToSchema for Date {}

/// What a day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A day off (a public holiday, or one set by a separate act).
    Holiday,
    /// A working day (a Saturday worked by a Cabinet order).
    Working,
}

impl DayKind {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Working => "working",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "holiday" => Some(DayKind::Holiday),
            "working" => Some(DayKind::Working),
            _ => None,
        }
    }
}

/// A day the calendar names: a holiday of the law or a row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// The date (YYYY-MM-DD).
    pub date: String,
    /// `holiday` or `working`.
    pub kind: DayKind,
    /// Its name (Latvian, as the act names it).
    pub name: String,
    /// The act it comes from.
    pub source: String,
    /// Whether it comes from the table (an admin's entry) rather than the law's rule.
    pub entered: bool,
}

/// Set a day's entry (replacing the one it had) on `tx`, with its history entry: the one
/// writer of `calendar_days`, for the admin's calls and for modules whose rules name days.
pub async fn set_entry(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    day: &Day,
    actor: &str,
) -> GovResult<()> {
    let now = crate::model::Time::now().0;
    sqlx::query("DELETE FROM calendar_days WHERE day = $1")
        .bind(&day.date)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "INSERT INTO calendar_days (day, kind, name, source, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&day.date)
    .bind(day.kind.as_str())
    .bind(&day.name)
    .bind(&day.source)
    .bind(actor)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let state = serde_json::to_string(day).unwrap_or_default();
    entry_history(tx, &day.date, &state, actor, now).await
}

/// Remove a day's entry on `tx`, with its history entry; `false` when it had none.
pub async fn remove_entry(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    date: &str,
    actor: &str,
) -> GovResult<bool> {
    let r = sqlx::query("DELETE FROM calendar_days WHERE day = $1")
        .bind(date)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    entry_history(
        tx,
        date,
        "{\"removed\":true}",
        actor,
        crate::model::Time::now().0,
    )
    .await?;
    Ok(true)
}

async fn entry_history(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    date: &str,
    state: &str,
    actor: &str,
    at: i64,
) -> GovResult<()> {
    sqlx::query("INSERT INTO calendar_history (day, state, actor, at) VALUES ($1, $2, $3, $4)")
        .bind(date)
        .bind(state)
        .bind(actor)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Western (Gregorian) Easter Sunday of `year` (the anonymous Gregorian algorithm).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a date")
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a fixed holiday is a date")
}

fn weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The public holidays of `year` by the law (Sundays included where the law names them).
pub fn law_holidays(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let e = easter(year);
    let mut v = vec![
        (ymd(year, 1, 1), "Jaungada diena"),
        (e - Days::new(2), "Lielā Piektdiena"),
        (e, "Pirmās Lieldienas"),
        (e + Days::new(1), "Otrās Lieldienas"),
        (
            ymd(year, 5, 1),
            "Darba svētki, Satversmes sapulces sasaukšanas diena",
        ),
        (ymd(year, 5, 4), "Neatkarības atjaunošanas diena"),
        (e + Days::new(49), "Vasarsvētki"),
        (ymd(year, 6, 23), "Līgo diena"),
        (ymd(year, 6, 24), "Jāņu diena"),
        (ymd(year, 11, 18), "Proklamēšanas diena"),
        (ymd(year, 12, 24), "Ziemassvētku vakars"),
        (ymd(year, 12, 25), "Pirmie Ziemassvētki"),
        (ymd(year, 12, 26), "Otrie Ziemassvētki"),
        (ymd(year, 12, 31), "Vecgada diena"),
    ];
    // Mother's Day: the second Sunday of May.
    let first_may = ymd(year, 5, 1);
    let to_sunday = (7 - first_may.weekday().num_days_from_sunday()) % 7;
    v.push((
        first_may + Days::new(u64::from(to_sunday) + 7),
        "Mātes diena",
    ));
    // 4 May and 18 November on a weekend: the next working day is a day off.
    for (day, name) in [
        (ymd(year, 5, 4), "brīvdiena par 4. maiju"),
        (ymd(year, 11, 18), "brīvdiena par 18. novembri"),
    ] {
        if weekend(day) {
            let mut next = day + Days::new(1);
            while weekend(next) || v.iter().any(|(d, _)| *d == next) {
                next = next + Days::new(1);
            }
            v.push((next, name));
        }
    }
    v.sort();
    v
}

/// The calendar: the law's rule and the table's rows.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    entered: BTreeMap<NaiveDate, (DayKind, String, String)>,
}

impl Calendar {
    /// The law's calendar with no entries (what a node uses when it cannot read the table
    /// is never this: [`Calendar::load`] fails instead).
    pub fn law_only() -> Calendar {
        Calendar::default()
    }

    /// Read the table.
    pub async fn load(pool: &AnyPool) -> GovResult<Calendar> {
        let rows = sqlx::query("SELECT day, kind, name, source FROM calendar_days")
            .fetch_all(pool)
            .await
            .map_err(db)?;
        let mut entered = BTreeMap::new();
        for r in &rows {
            let day: String = r.try_get("day").map_err(db)?;
            let kind: String = r.try_get("kind").map_err(db)?;
            let (Ok(date), Some(kind)) = (day.parse::<NaiveDate>(), DayKind::parse(&kind)) else {
                return Err(GovError::Store(StoreError::Corrupt(format!(
                    "calendar day `{day}` of kind `{kind}`"
                ))));
            };
            entered.insert(
                date,
                (
                    kind,
                    r.try_get("name").map_err(db)?,
                    r.try_get("source").map_err(db)?,
                ),
            );
        }
        Ok(Calendar { entered })
    }

    /// Whether `d` is a working day.
    pub fn is_working(&self, d: NaiveDate) -> bool {
        if let Some((kind, _, _)) = self.entered.get(&d) {
            return *kind == DayKind::Working;
        }
        !weekend(d) && !law_holidays(d.year()).iter().any(|(h, _)| *h == d)
    }

    /// `d` if it is a working day, else the next one (a term ending on a non-working day
    /// ends on the next working day, [`TERMS_LAW`]).
    pub fn next_working(&self, mut d: NaiveDate) -> NaiveDate {
        // Any year has working days: the loop ends within weeks, bounded for safety.
        for _ in 0..366 {
            if self.is_working(d) {
                return d;
            }
            d = d + Days::new(1);
        }
        d
    }

    /// The day `n` working days after `d` (a term in working days counts from the next
    /// day).
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day + Days::new(1);
            if self.is_working(day) {
                left -= 1;
            }
        }
        day
    }

    /// The days of `year` the calendar names: the law's holidays and the table's rows (a
    /// row replaces the law's entry of its day), by date.
    pub fn year(&self, year: i32) -> Vec<Day> {
        let mut out: BTreeMap<NaiveDate, Day> = law_holidays(year)
            .into_iter()
            .map(|(d, name)| {
                (
                    d,
                    Day {
                        date: d.to_string(),
                        kind: DayKind::Holiday,
                        name: name.to_owned(),
                        source: HOLIDAYS_LAW.to_owned(),
                        entered: false,
                    },
                )
            })
            .collect();
        for (d, (kind, name, source)) in self.entered.range(ymd(year, 1, 1)..=ymd(year, 12, 31)) {
            out.insert(
                *d,
                Day {
                    date: d.to_string(),
                    kind: *kind,
                    name: name.clone(),
                    source: source.clone(),
                    entered: true,
                },
            );
        }
        out.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riga_dates_follow_summer_time() {
        let ms = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        // 30 June 21:30 UTC is 1 July 00:30 in Riga (UTC+3).
        assert_eq!(riga_date(ms("2026-06-30 21:30")), ymd(2026, 7, 1));
        // In winter Riga is UTC+2: 21:30 UTC on 31 December is 23:30 there, 22:30 past
        // midnight.
        assert_eq!(riga_date(ms("2026-12-31 21:30")), ymd(2026, 12, 31));
        assert_eq!(riga_date(ms("2026-12-31 22:30")), ymd(2027, 1, 1));
        assert_eq!(riga_day_start(ymd(2027, 1, 1)).0, ms("2026-12-31 22:00"));
    }

    #[test]
    fn easter_matches_known_dates() {
        assert_eq!(easter(2024), ymd(2024, 3, 31));
        assert_eq!(easter(2025), ymd(2025, 4, 20));
        assert_eq!(easter(2026), ymd(2026, 4, 5));
        assert_eq!(easter(2027), ymd(2027, 3, 28));
    }

    #[test]
    fn weekend_national_days_carry_to_monday() {
        // 4 May 2025 was a Sunday: Monday 5 May was a day off.
        let cal = Calendar::law_only();
        assert!(!cal.is_working(ymd(2025, 5, 5)));
        // 18 November 2023 was a Saturday: Monday 20 November was a day off.
        assert!(!cal.is_working(ymd(2023, 11, 20)));
        // 18 November 2026 is a Wednesday: the day itself, no carry.
        assert!(!cal.is_working(ymd(2026, 11, 18)));
        assert!(cal.is_working(ymd(2026, 11, 19)));
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let cal = Calendar::law_only();
        // Thursday 2 April 2026 + 1 working day: Good Friday 3 April, the weekend and Easter
        // Monday 6 April are off: Tuesday 7 April.
        assert_eq!(cal.add_working_days(ymd(2026, 4, 2), 1), ymd(2026, 4, 7));
        // Christmas 2026: Thursday 24 to Saturday 26, then Sunday; Monday 28 December.
        assert_eq!(cal.next_working(ymd(2026, 12, 24)), ymd(2026, 12, 28));
        assert_eq!(cal.add_working_days(ymd(2026, 6, 19), 2), ymd(2026, 6, 25));
    }

    #[test]
    fn entries_override_the_law() {
        let mut cal = Calendar::law_only();
        cal.entered.insert(
            ymd(2026, 12, 23),
            (DayKind::Holiday, "x".into(), "order".into()),
        );
        cal.entered.insert(
            ymd(2026, 12, 19),
            (DayKind::Working, "moved".into(), "order".into()),
        );
        assert!(!cal.is_working(ymd(2026, 12, 23)));
        assert!(cal.is_working(ymd(2026, 12, 19)));
        let days = cal.year(2026);
        assert!(days.iter().any(|d| d.date == "2026-12-19" && d.entered));
        assert!(
            days.iter()
                .any(|d| d.date == "2026-05-10" && d.name == "Mātes diena")
        );
    }
}
