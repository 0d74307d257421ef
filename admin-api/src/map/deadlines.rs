//! Reports due under contracts: the programme's report schedule (`{kind, months after the
//! contract}`) against the reports filed, as a list of due-soon and overdue reports for
//! programme managers and applicants, and reminders to their inboxes (each reminder once).

use chrono::Months;
use serde::Serialize;
use sqlx::Row;

use crate::calendar::Calendar;
use crate::governance::{GovError, GovResult};
use crate::model::Time;

use super::model::{MapRole, ReportDue};
use super::rules::Actor;
use super::service::MapCaller;
use super::store::{MapStore, corrupt, db};

/// How often the reminder task looks.
pub const REMINDER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A report due under a contract.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DueReport {
    /// The application.
    pub application: i64,
    /// Its programme.
    pub programme: i64,
    /// `interim` or `final`.
    pub kind: String,
    /// Which report of that kind (1 for the first).
    pub number: usize,
    /// When it is due (YYYY-MM-DD, UTC).
    pub due_on: String,
    /// Whether it is past due.
    pub overdue: bool,
    /// Days until due (negative: days overdue).
    pub days: i64,
}

struct Contracted {
    application: i64,
    programme: i64,
    applicant_code: String,
    organisation: String,
    contracted_at: i64,
    schedule: Vec<ReportDue>,
    filed: Vec<String>,
}

async fn contracted(
    store: &MapStore,
    organisation: Option<&str>,
    applicant: Option<&str>,
) -> GovResult<Vec<Contracted>> {
    let rows = sqlx::query(
        "SELECT a.id, a.programme, a.applicant_code, g.organisation, g.report_schedule, \
         (SELECT MAX(h.at) FROM map_history h WHERE h.application = a.id AND h.action = 'contract') AS contracted_at \
         FROM map_applications a JOIN map_programmes g ON g.id = a.programme \
         WHERE a.status = 'contracted' AND ($1 = '' OR g.organisation = $1) AND ($2 = '' OR a.applicant_code = $2) \
         ORDER BY a.id LIMIT 10000",
    )
    .bind(organisation.unwrap_or(""))
    .bind(applicant.unwrap_or(""))
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(contracted_at) = r.try_get::<Option<i64>, _>("contracted_at").map_err(db)? else {
            // Seeded contracts have no `contract` entry: nothing to count from.
            continue;
        };
        let id: i64 = r.try_get("id").map_err(db)?;
        let filed: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM map_reports WHERE application = $1")
                .bind(id)
                .fetch_all(&store.pool)
                .await
                .map_err(db)?;
        let schedule: Vec<ReportDue> =
            serde_json::from_str(&r.try_get::<String, _>("report_schedule").map_err(db)?)
                .map_err(|e| corrupt(format!("report_schedule: {e}")))?;
        out.push(Contracted {
            application: id,
            programme: r.try_get("programme").map_err(db)?,
            applicant_code: r.try_get("applicant_code").map_err(db)?,
            organisation: r.try_get("organisation").map_err(db)?,
            contracted_at,
            schedule,
            filed,
        });
    }
    Ok(out)
}

/// How due dates are counted: the calendar and whether a date on a non-working day moves
/// to the next working day ([`crate::calendar::TERMS_LAW`]).
pub(crate) struct DueRule {
    pub(crate) calendar: Calendar,
    pub(crate) working_days: bool,
    /// Days before a due date that its reminder goes out.
    pub(crate) reminder_days: i64,
}

impl DueRule {
    /// The rule of the settings and the calendar now.
    pub(crate) async fn load(store: &MapStore) -> GovResult<DueRule> {
        let settings = store.settings().await?;
        Ok(DueRule {
            calendar: Calendar::load(&store.pool).await?,
            working_days: settings.due_dates_on_working_days,
            reminder_days: settings.reminder_days,
        })
    }
}

/// The reports of `c` not filed yet, with their due dates (UTC days).
fn open_reports(c: &Contracted, now: Time, rule: &DueRule) -> Vec<DueReport> {
    let start = Time(c.contracted_at).to_datetime();
    let today = now.to_datetime().date_naive();
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut out = Vec::new();
    let mut schedule: Vec<&ReportDue> = c.schedule.iter().collect();
    schedule.sort_by_key(|r| r.months_after_contract);
    for r in schedule {
        let n = seen.entry(r.kind.as_str()).or_default();
        *n += 1;
        let filed = c.filed.iter().filter(|k| **k == r.kind).count();
        if filed >= *n {
            continue;
        }
        let Some(due) = start.checked_add_months(Months::new(r.months_after_contract)) else {
            continue;
        };
        let mut due = due.date_naive();
        if rule.working_days {
            due = rule.calendar.next_working(due);
        }
        let days = (due - today).num_days();
        out.push(DueReport {
            application: c.application,
            programme: c.programme,
            kind: r.kind.clone(),
            number: *n,
            due_on: due.format("%Y-%m-%d").to_string(),
            overdue: days < 0,
            days,
        });
    }
    out
}

/// Reports overdue or due within `within_days`, soonest first: a programme manager's
/// organisation's, or an applicant's own.
pub async fn due_reports(c: &MapCaller, within_days: i64) -> GovResult<Vec<DueReport>> {
    if !(0..=366).contains(&within_days) {
        return Err(GovError::Invalid {
            field: "within_days".into(),
            reason: "must be 0 to 366".into(),
        });
    }
    let list = match &c.actor {
        Actor::Staff { organisation, .. } => {
            c.actor.require(MapRole::ProgrammeManager, organisation)?;
            contracted(&c.store, Some(organisation), None).await?
        }
        Actor::Applicant { code } => contracted(&c.store, None, Some(code)).await?,
        Actor::Admin => {
            return Err(GovError::Forbidden(
                "reports due are for programme managers and applicants".into(),
            ));
        }
    };
    let now = Time::now();
    let rule = DueRule::load(&c.store).await?;
    let mut out: Vec<DueReport> = list
        .iter()
        .flat_map(|c| open_reports(c, now, &rule))
        .filter(|d| d.days <= within_days)
        .collect();
    out.sort_by_key(|d| (d.days, d.application));
    Ok(out)
}

/// An application whose records are past their retention period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionDue {
    /// The application.
    pub application: i64,
    /// Its programme.
    pub programme: i64,
    /// Its final status.
    pub status: String,
    /// Its last change (RFC 3339).
    pub last_change: String,
    /// Kept until (RFC 3339): the last change plus the setting `retention_years`.
    pub retain_until: String,
}

/// Applications of the caller's organisation in a final state (closed, terminated,
/// withdrawn, rejected) whose retention period has ended, oldest first (programme managers):
/// the list a records keeper takes to the disposal decision. MAP disposes of nothing by
/// itself.
pub async fn retention_due(c: &MapCaller) -> GovResult<Vec<RetentionDue>> {
    let organisation = match &c.actor {
        Actor::Staff { organisation, .. } => {
            c.actor.require(MapRole::ProgrammeManager, organisation)?;
            organisation.clone()
        }
        _ => {
            return Err(GovError::Forbidden(
                "the retention list is for programme managers".into(),
            ));
        }
    };
    let years = c.store.settings().await?.retention_years;
    let now = Time::now().to_datetime();
    let months = u32::try_from(years.clamp(0, 100) * 12).unwrap_or(1_200);
    let cutoff = now
        .checked_sub_months(Months::new(months))
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MIN);
    let rows = sqlx::query(
        "SELECT a.id, a.programme, a.status, a.updated_at FROM map_applications a \
         JOIN map_programmes g ON g.id = a.programme \
         WHERE g.organisation = $1 AND a.status IN ('closed', 'terminated', 'withdrawn', 'rejected') \
         AND a.updated_at <= $2 ORDER BY a.updated_at, a.id LIMIT 1000",
    )
    .bind(&organisation)
    .bind(cutoff)
    .fetch_all(&c.store.pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            let at: i64 = r.try_get("updated_at").map_err(db)?;
            let until = Time(at)
                .to_datetime()
                .checked_add_months(Months::new(months))
                .map(|t| Time(t.timestamp_millis()).to_rfc3339())
                .unwrap_or_default();
            Ok(RetentionDue {
                application: r.try_get("id").map_err(db)?,
                programme: r.try_get("programme").map_err(db)?,
                status: r.try_get("status").map_err(db)?,
                last_change: Time(at).to_rfc3339(),
                retain_until: until,
            })
        })
        .collect()
}

/// Send the reminders due now (each once): to the applicant and the grantor's programme
/// managers, when a report is due within the setting `reminder_days` and again when it is
/// overdue.
/// Returns how many were sent.
pub async fn send_reminders(store: &MapStore) -> GovResult<usize> {
    let now = Time::now();
    let rule = DueRule::load(store).await?;
    let mut sent = 0;
    for c in contracted(store, None, None).await? {
        for d in open_reports(&c, now, &rule) {
            let stage = if d.overdue {
                "overdue"
            } else if d.days <= rule.reminder_days {
                "due"
            } else {
                continue;
            };
            let key = format!("{}:{}:{}:{stage}", d.application, d.kind, d.number);
            let fresh = sqlx::query("INSERT INTO map_reminders (key, at) VALUES ($1, $2)")
                .bind(&key)
                .bind(now.0)
                .execute(&store.pool)
                .await;
            match fresh {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(db(e)),
            }
            let text = if d.overdue {
                format!(
                    "The {} report no. {} of application {} was due on {}",
                    d.kind, d.number, d.application, d.due_on
                )
            } else {
                format!(
                    "The {} report no. {} of application {} is due on {}",
                    d.kind, d.number, d.application, d.due_on
                )
            };
            store
                .notify(
                    &format!("subject:{}", c.applicant_code),
                    Some(d.application),
                    &text,
                )
                .await?;
            store
                .notify(
                    &format!("org:{}", c.organisation),
                    Some(d.application),
                    &text,
                )
                .await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Send reminders every [`REMINDER_INTERVAL`] until the returned task is dropped.
pub fn spawn_reminders(store: MapStore) -> dagr_engine::task::SpawnedTask<()> {
    dagr_engine::task::SpawnedTask::spawn(async move {
        let mut tick = tokio::time::interval(REMINDER_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match send_reminders(&store).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "MAP report reminders sent"),
                Err(e) => {
                    tracing::warn!(error = %e, "MAP report reminders not sent; retried later")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(schedule: &[(&str, u32)], filed: &[&str], at: &str) -> Contracted {
        Contracted {
            application: 7,
            programme: 1,
            applicant_code: "010101-12345".into(),
            organisation: "LIAA".into(),
            contracted_at: Time::parse(at).unwrap().0,
            schedule: schedule
                .iter()
                .map(|(k, m)| ReportDue {
                    kind: (*k).into(),
                    months_after_contract: *m,
                })
                .collect(),
            filed: filed.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn reports_fall_due_by_calendar_month_and_leave_when_filed() {
        let now = Time::parse("2026-08-15").unwrap();
        let c = contract(
            &[("final", 12), ("interim", 6), ("interim", 9)],
            &[],
            "2026-01-31",
        );
        let rule = DueRule {
            calendar: Calendar::law_only(),
            working_days: true,
            reminder_days: 14,
        };
        let due = open_reports(&c, now, &rule);
        let got: Vec<(&str, usize, &str, bool)> = due
            .iter()
            .map(|d| (d.kind.as_str(), d.number, d.due_on.as_str(), d.overdue))
            .collect();
        // 31 January + 6 months is 31 July (a Friday); + 9 months is 31 October, a
        // Saturday: due on Monday 2 November; + 12 is 31 January 2027, a Sunday: Monday 1
        // February.
        assert_eq!(
            got,
            [
                ("interim", 1, "2026-07-31", true),
                ("interim", 2, "2026-11-02", false),
                ("final", 1, "2027-02-01", false)
            ]
        );
        let as_computed = DueRule {
            calendar: Calendar::law_only(),
            working_days: false,
            reminder_days: 14,
        };
        assert_eq!(open_reports(&c, now, &as_computed)[1].due_on, "2026-10-31");
        assert_eq!(due[0].days, -15);
        // One interim filed: the first is met, the second still open.
        let c = contract(
            &[("interim", 6), ("interim", 9)],
            &["interim"],
            "2026-01-31",
        );
        let due = open_reports(&c, now, &rule);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].number, due[0].due_on.as_str()), (2, "2026-11-02"));
    }
}
