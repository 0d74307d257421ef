//! Rules for datasets, their loads and schema changes.

use super::*;

impl Governance {
    // ---- datasets ------------------------------------------------------------------

    /// A dataset's governance metadata.
    pub async fn dataset(&self, _p: &Principal, name: &str) -> GovResult<DatasetMeta> {
        self.dataset_meta(name).await
    }

    /// Register a new dataset (an owner for its organisation, or an admin).
    pub async fn register_dataset(
        &self,
        p: &Principal,
        definition: DatasetDefinition,
        sla_days: Option<i64>,
        provider_systems: Vec<i64>,
    ) -> GovResult<DatasetMeta> {
        Self::require_admin_or_owner_of(p, &definition.owner)?;
        self.organisation(p, &definition.owner).await?;
        let sla = sla_days.unwrap_or(DEFAULT_SLA_DAYS);
        if !(1..=365).contains(&sla) {
            return Err(invalid("sla_days", "must be 1–365"));
        }
        self.check_provider_systems(&definition.owner, &provider_systems)
            .await?;
        let definition = definition.validated()?;
        if self.store.dataset(&definition.name).await?.is_some() {
            return Err(GovError::Conflict(format!(
                "dataset `{}` already exists",
                definition.name
            )));
        }
        let engine = self.engine()?;
        let name = definition.name.clone();
        let owner = definition.owner.clone();
        if engine.definition(&name).is_ok() {
            return Err(GovError::Conflict(format!(
                "dataset `{name}` already exists"
            )));
        }
        // The store first (with the caller's SLA and systems), then the engine; if the
        // engine refuses, the store row is taken back, so a refused registration leaves
        // nothing behind.
        let meta = self
            .store
            .create_dataset(&name, &owner, sla, &provider_systems, &p.describe())
            .await?;
        if let Err(e) = engine.create_dataset(definition).await {
            if let Err(undo) = self.store.delete_dataset(&name, &p.describe()).await {
                tracing::error!(dataset = %name, error = %undo, "could not take back a refused registration");
            }
            return Err(e.into());
        }
        self.reload().await?;
        Ok(meta)
    }

    async fn check_provider_systems(&self, owner: &str, systems: &[i64]) -> GovResult<()> {
        if systems.len() > 100 {
            return Err(invalid("provider_systems", "at most 100"));
        }
        for &id in systems {
            match self.store.system(id).await? {
                Some(s) if s.organisation == owner && s.kind == SystemKind::Provider => {}
                _ => {
                    return Err(invalid(
                        "provider_systems",
                        format!("system {id} is not a provider system of `{owner}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Change a dataset's SLA and provider systems (its owner, or an admin).
    pub async fn update_dataset(
        &self,
        p: &Principal,
        name: &str,
        sla_days: Option<i64>,
        provider_systems: Option<Vec<i64>>,
    ) -> GovResult<DatasetMeta> {
        let meta = self.dataset_meta(name).await?;
        Self::require_admin_or_owner_of(p, &meta.owner)?;
        let sla = sla_days.unwrap_or(meta.sla_days);
        if !(1..=365).contains(&sla) {
            return Err(invalid("sla_days", "must be 1–365"));
        }
        let systems = provider_systems.unwrap_or(meta.provider_systems);
        self.check_provider_systems(&meta.owner, &systems).await?;
        self.store
            .update_dataset(name, sla, &systems, &p.describe())
            .await?;
        self.dataset_meta(name).await
    }

    // ---- loads ---------------------------------------------------------------------

    /// Whether `p` loads datasets of organisation `owner` and sees their loads: an owner of
    /// it, or an admin.
    fn runs_loads_of(p: &Principal, owner: &str) -> bool {
        p.role == Role::Admin || (p.role == Role::Owner && p.organisation.as_deref() == Some(owner))
    }

    /// The dataset `name`, if `p` may load it (an owner of its organisation, or an admin).
    pub async fn loadable_dataset(&self, p: &Principal, name: &str) -> GovResult<DatasetMeta> {
        let meta = self.dataset_meta(name).await?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(GovError::Forbidden(format!(
                "only an admin or an owner of `{}` loads `{name}`",
                meta.owner
            )));
        }
        Ok(meta)
    }

    /// One load, for an owner of its dataset or an admin; anyone else is told it does not
    /// exist, so that load ids do not leak.
    pub async fn load(&self, p: &Principal, id: i64) -> GovResult<Load> {
        let not_found = || GovError::NotFound(format!("load {id}"));
        let load = self.store.load(id).await?.ok_or_else(not_found)?;
        let meta = self
            .store
            .dataset(&load.dataset)
            .await?
            .ok_or_else(not_found)?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(not_found());
        }
        Ok(load)
    }

    /// The load history of a dataset, newest first (its owners and admins).
    pub async fn loads(&self, p: &Principal, dataset: &str, page: &Page) -> GovResult<Vec<Load>> {
        let meta = self.dataset_meta(dataset).await?;
        if !Self::runs_loads_of(p, &meta.owner) {
            return Err(GovError::Forbidden(format!(
                "only an admin or an owner of `{}` sees the loads of `{dataset}`",
                meta.owner
            )));
        }
        Ok(self.store.loads_of(dataset, page).await?)
    }

    // ---- schema change management ---------------------------------------------------

    /// File a schema change (the dataset's owner). A change that breaks no active agreement
    /// is applied at once; one that removes or retypes an attribute an active agreement
    /// grants (or its row scope reads) waits for an admin, listing those agreements; so does
    /// one that un-marks a personal attribute (or changes its subject column).
    pub async fn file_change(
        &self,
        p: &Principal,
        dataset: &str,
        definition: DatasetDefinition,
    ) -> GovResult<ChangeRequest> {
        let meta = self.dataset_meta(dataset).await?;
        if !(p.role == Role::Owner && p.organisation.as_deref() == Some(&meta.owner)) {
            return Err(GovError::Forbidden(format!(
                "only an owner of `{}` changes the schema of `{dataset}`",
                meta.owner
            )));
        }
        if definition.name != dataset {
            return Err(invalid("definition.name", format!("must be `{dataset}`")));
        }
        let new = definition.validated()?;
        let _schema = self.schema_lock.lock().await;
        let old = self.engine()?.definition(dataset)?;
        if new.owner != old.owner {
            return Err(invalid("definition.owner", "the owner cannot change"));
        }
        if new.primary_key != old.primary_key {
            return Err(invalid(
                "definition.primary_key",
                "the primary key cannot change; register a new dataset instead",
            ));
        }
        let changes = diff(&old, &new);
        let breaking: BTreeSet<&str> = changes
            .removed
            .iter()
            .map(String::as_str)
            .chain(changes.retyped.iter().map(|r| r.name.as_str()))
            .collect();
        let mut affected = Vec::new();
        if !breaking.is_empty() {
            let now = Time::now();
            let filter = ListFilter {
                dataset: Some(dataset.to_owned()),
                status: Some("active".into()),
                ..Default::default()
            };
            let page = Page {
                limit: i64::MAX,
                after: None,
            };
            for a in self.store.agreements(&filter, &page).await? {
                if a.valid_to <= now {
                    continue;
                }
                let mut hit: BTreeSet<String> = a
                    .attributes
                    .iter()
                    .filter(|x| breaking.contains(x.as_str()))
                    .cloned()
                    .collect();
                if let Some(scope) = &a.row_scope
                    && let Ok(cols) = self.engine()?.check_row_scope(dataset, scope)
                {
                    hit.extend(cols.into_iter().filter(|c| breaking.contains(c.as_str())));
                }
                if !hit.is_empty() {
                    affected.push(AffectedAgreement {
                        agreement: a.id,
                        consumer_organisation: a.consumer_organisation.clone(),
                        attributes: hit.into_iter().collect(),
                    });
                }
            }
        }
        let json = serde_json::to_value(&new).map_err(|e| invalid("definition", e.to_string()))?;
        let base =
            serde_json::to_value(old.as_ref()).map_err(|e| invalid("definition", e.to_string()))?;
        // Switching off (or re-pointing) the audit of a personal attribute is for an admin
        // to review, whoever reads it.
        let status = if affected.is_empty() && changes.unmarked_personal.is_empty() {
            ChangeStatus::Applied
        } else {
            ChangeStatus::Pending
        };
        // The record first: a crash after it is finished by `reconcile_definitions`.
        let change = self
            .store
            .create_change_request(
                dataset,
                &json,
                &base,
                &changes,
                &affected,
                status,
                &p.describe(),
            )
            .await?;
        if status == ChangeStatus::Applied {
            self.engine()?.redefine(new).await?;
        }
        Ok(change)
    }

    fn sees_change(p: &Principal, owner: &str) -> bool {
        p.role == Role::Admin || (p.role == Role::Owner && p.organisation.as_deref() == Some(owner))
    }

    /// One change request (admin, or an owner of the dataset).
    pub async fn change_request(&self, p: &Principal, id: i64) -> GovResult<ChangeRequest> {
        let not_found = || GovError::NotFound(format!("change request {id}"));
        let c = self.store.change_request(id).await?.ok_or_else(not_found)?;
        let meta = self.dataset_meta(&c.dataset).await?;
        if Self::sees_change(p, &meta.owner) {
            Ok(c)
        } else {
            Err(not_found())
        }
    }

    /// Change requests (admin: all; an owner: its datasets').
    pub async fn change_requests(
        &self,
        p: &Principal,
        dataset: Option<&str>,
        status: Option<&str>,
        page: &Page,
    ) -> GovResult<Vec<ChangeRequest>> {
        let owner = match p.role {
            Role::Admin => None,
            Role::Owner => Some(Self::org_of(p)?),
            _ => {
                return Err(GovError::Forbidden(
                    "only owners and admins see schema changes".into(),
                ));
            }
        };
        if let Some(s) = status
            && ChangeStatus::parse(s).is_none()
        {
            return Err(invalid(
                "status",
                "one of pending, applied, accepted, rejected",
            ));
        }
        Ok(self
            .store
            .change_requests(dataset, owner, status, page)
            .await?)
    }

    /// Accept a pending change (admin): the new definition takes effect, and removed
    /// attributes leave the affected agreements (an agreement left with none is revoked).
    pub async fn accept_change(&self, p: &Principal, id: i64) -> GovResult<ChangeRequest> {
        Self::require_admin(p)?;
        let c = self.change_request(p, id).await?;
        if c.status != ChangeStatus::Pending {
            return Err(GovError::Conflict(format!(
                "change request {id} is {}; only a pending one can be accepted",
                c.status
            )));
        }
        let def: DatasetDefinition = serde_json::from_value(c.definition.clone())
            .map_err(|e| GovError::Store(StoreError::Corrupt(format!("change {id}: {e}"))))?;
        let _schema = self.schema_lock.lock().await;
        let engine = self.engine()?;
        let current = engine.definition(&c.dataset)?;
        let current_json = serde_json::to_value(current.as_ref())
            .map_err(|e| GovError::Store(StoreError::Corrupt(e.to_string())))?;
        if c.base.as_ref() != Some(&current_json) {
            return Err(GovError::Conflict(format!(
                "the definition of `{}` changed after change request {id} was filed; \
                 reject it and file the change again against the current definition",
                c.dataset
            )));
        }
        // Agreements whose row scope reads a removed or retyped column would mean something
        // else (or fail) under the new definition: they are revoked, not narrowed.
        let broken: BTreeSet<String> = c
            .changes
            .removed
            .iter()
            .cloned()
            .chain(c.changes.retyped.iter().map(|r| r.name.clone()))
            .collect();
        let mut revoke = Vec::new();
        let active = ListFilter {
            dataset: Some(c.dataset.clone()),
            status: Some("active".into()),
            ..Default::default()
        };
        let all = Page {
            limit: i64::MAX,
            after: None,
        };
        for ag in self.store.agreements(&active, &all).await? {
            if let Some(scope) = &ag.row_scope
                && engine
                    .check_row_scope(&c.dataset, scope)
                    .map_or(true, |cols| cols.iter().any(|col| broken.contains(col)))
            {
                revoke.push(ag.id);
            }
        }
        // The decision first (with the agreements it narrows or revokes), then the engine;
        // if the process dies in between, `reconcile_definitions` finishes the job.
        if !self
            .store
            .decide_change_request(&c, ChangeStatus::Accepted, &p.describe(), None, &revoke)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "change request {id} was decided meanwhile"
            )));
        }
        engine.redefine(def).await?;
        self.reload().await?;
        self.change_request(p, id).await
    }

    /// Reject a pending change with a reason (admin).
    pub async fn reject_change(
        &self,
        p: &Principal,
        id: i64,
        reason: &str,
    ) -> GovResult<ChangeRequest> {
        Self::require_admin(p)?;
        let c = self.change_request(p, id).await?;
        let reason = text("reason", reason, true)?;
        if c.status != ChangeStatus::Pending {
            return Err(GovError::Conflict(format!(
                "change request {id} is {}; only a pending one can be rejected",
                c.status
            )));
        }
        if !self
            .store
            .decide_change_request(
                &c,
                ChangeStatus::Rejected,
                &p.describe(),
                Some(&reason),
                &[],
            )
            .await?
        {
            return Err(GovError::Conflict(format!(
                "change request {id} was decided meanwhile"
            )));
        }
        self.change_request(p, id).await
    }

    /// When the owner of `meta` must decide an access request filed at `filed_at`: the
    /// deadline [`Governance::create_request`] gives a request (the portal shows it before
    /// the request is filed).
    pub fn decision_due(meta: &DatasetMeta, filed_at: Time) -> Time {
        filed_at.plus_days(meta.sla_days)
    }

    /// File a schema change as [`Governance::file_change`] does, with the owner's reason
    /// for it (optional; checked before anything is filed) kept in the change request's
    /// history as `explained`, for the admin who decides.
    pub async fn file_change_with_reason(
        &self,
        p: &Principal,
        dataset: &str,
        definition: DatasetDefinition,
        reason: &str,
    ) -> GovResult<ChangeRequest> {
        let reason = text("reason", reason, false)?;
        let change = self.file_change(p, dataset, definition).await?;
        // The change is committed (and, if not breaking, applied): a failure to add the
        // note must not make the caller file it again.
        if !reason.is_empty()
            && let Err(e) = self
                .store
                .add_note(
                    "change_request",
                    change.id,
                    "explained",
                    &p.describe(),
                    &reason,
                )
                .await
        {
            tracing::error!(error = %e, change = change.id, "cannot record a schema change's reason");
        }
        Ok(change)
    }
}
