//! Rules for access requests, agreements and their history.

use super::*;

impl Governance {
    // ---- access requests -----------------------------------------------------------

    /// File an access request (a consumer: a consumer system's token or a consumer user).
    pub async fn create_request(
        &self,
        p: &Principal,
        input: RequestInput,
    ) -> GovResult<AccessRequest> {
        if p.role != Role::Consumer {
            return Err(GovError::Forbidden(
                "only a consumer (system or user) files access requests".into(),
            ));
        }
        let org = Self::org_of(p)?.to_owned();
        let meta = self.dataset_meta(&input.dataset).await?;
        if meta.owner == org {
            return Err(invalid(
                "dataset",
                "your organisation owns this dataset; owners need no agreement",
            ));
        }
        let def = self.engine()?.definition(&input.dataset)?;
        let attributes = check_attributes(
            &input.attributes,
            |a| def.attribute(a).is_some(),
            &input.dataset,
        )?;
        let row_scope = match &input.row_scope {
            Some(s) if !s.trim().is_empty() => {
                self.engine()?
                    .check_row_scope(&input.dataset, s)
                    .map_err(|e| invalid("row_scope", e.to_string()))?;
                Some(s.trim().to_owned())
            }
            _ => None,
        };
        let purpose = text("purpose", &input.purpose, true)?;
        let legal_basis = text("legal_basis", &input.legal_basis, true)?;
        if input.systems.is_empty() {
            return Err(invalid(
                "systems",
                "name at least one of your consumer systems",
            ));
        }
        if input.systems.len() > 100 {
            return Err(invalid("systems", "at most 100"));
        }
        let mut systems = input.systems.clone();
        systems.sort_unstable();
        systems.dedup();
        for &id in &systems {
            match self.store.system(id).await? {
                Some(s) if s.organisation == org && s.kind == SystemKind::Consumer => {}
                _ => {
                    return Err(invalid(
                        "systems",
                        format!("system {id} is not a consumer system of `{org}`"),
                    ));
                }
            }
        }
        let now = Time::now();
        let valid_from = input.valid_from.unwrap_or(now);
        check_validity(valid_from, input.valid_to, now)?;
        let request = self
            .store
            .create_request(&NewRequest {
                dataset: input.dataset.clone(),
                owner_organisation: meta.owner.clone(),
                consumer_organisation: org,
                attributes,
                row_scope,
                purpose,
                legal_basis,
                systems,
                valid_from,
                valid_to: input.valid_to,
                created_by: p.describe(),
                created_at: now,
                due_at: Self::decision_due(&meta, now),
            })
            .await?;
        Ok(request)
    }

    fn sees_request(p: &Principal, r: &AccessRequest) -> bool {
        p.role == Role::Admin
            || (p.role == Role::Consumer
                && p.organisation.as_deref() == Some(&r.consumer_organisation))
            || (p.role == Role::Owner && p.organisation.as_deref() == Some(&r.owner_organisation))
    }

    /// One request (admin; the consumer organisation; the dataset's owner).
    pub async fn request(&self, p: &Principal, id: i64) -> GovResult<AccessRequest> {
        match self.store.request(id).await? {
            Some(r) if Self::sees_request(p, &r) => Ok(r),
            _ => Err(GovError::NotFound(format!("request {id}"))),
        }
    }

    /// Requests visible to the caller, newest first. `overdue` lists only pending requests
    /// past their deadline.
    pub async fn requests(
        &self,
        p: &Principal,
        mut filter: ListFilter,
        overdue: bool,
        page: &Page,
    ) -> GovResult<Vec<AccessRequest>> {
        scope_filter(p, &mut filter)?;
        if overdue {
            filter.due_before = Some(Time::now());
        }
        Ok(self.store.requests(&filter, page).await?)
    }

    /// Approve a pending request, possibly narrowing it (the dataset's owner).
    pub async fn approve(
        &self,
        p: &Principal,
        id: i64,
        input: ApprovalInput,
    ) -> GovResult<Agreement> {
        let r = self.request(p, id).await?;
        Self::require_decider(p, &r)?;
        if r.status != RequestStatus::Pending {
            return Err(GovError::Conflict(format!(
                "request {id} is {}; only a pending request can be approved",
                r.status
            )));
        }
        // Serialise with schema changes on this server, so an approval cannot slip between a
        // change's check of the affected agreements and its application.
        let _schema = self.schema_lock.lock().await;
        let def = self.engine()?.definition(&r.dataset)?;
        let attributes = match input.attributes {
            None => r.attributes.clone(),
            Some(list) => {
                let list =
                    check_attributes(&list, |a| r.attributes.iter().any(|x| x == a), &r.dataset)
                        .map_err(|e| match e {
                            GovError::Invalid { reason, .. } => invalid(
                                "attributes",
                                format!(
                                    "{reason}; an approval may only narrow the requested attributes"
                                ),
                            ),
                            other => other,
                        })?;
                // Keep the dataset's order.
                r.attributes
                    .iter()
                    .filter(|a| list.contains(a))
                    .cloned()
                    .collect()
            }
        };
        if let Some(gone) = attributes.iter().find(|a| def.attribute(a).is_none()) {
            return Err(invalid(
                "attributes",
                format!(
                    "`{gone}` is no longer an attribute of `{}`; leave it out",
                    r.dataset
                ),
            ));
        }
        let extra = input
            .row_scope
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        if let Some(e) = extra {
            // Checked alone first: a fragment like `TRUE) OR (TRUE` would widen the
            // requested scope once pasted into `(S) AND (E)`.
            self.engine()?
                .check_row_scope(&r.dataset, e)
                .map_err(|e| invalid("row_scope", e.to_string()))?;
        }
        let row_scope = match (r.row_scope.as_deref(), extra) {
            (s, None) => s.map(str::to_owned),
            (None, Some(e)) => Some(e.to_owned()),
            // Newlines end any `--` comment inside a part, so neither can swallow the other.
            (Some(s), Some(e)) => Some(format!("({s}\n) AND ({e}\n)")),
        };
        if let Some(s) = &row_scope {
            self.engine()?
                .check_row_scope(&r.dataset, s)
                .map_err(|e| invalid("row_scope", e.to_string()))?;
        }
        let now = Time::now();
        let valid_to = match input.valid_to {
            None => r.valid_to,
            Some(t) if t > r.valid_to => {
                return Err(invalid(
                    "valid_to",
                    "an approval may end earlier, not later, than requested",
                ));
            }
            Some(t) => t,
        };
        if valid_to <= now {
            return Err(invalid(
                "valid_to",
                "the requested validity has already ended",
            ));
        }
        if valid_to <= r.valid_from {
            return Err(invalid(
                "valid_to",
                "must be after the requested valid_from",
            ));
        }
        let note = input
            .note
            .as_deref()
            .map(|n| text("note", n, false))
            .transpose()?;
        let approval = Approval {
            attributes,
            row_scope,
            valid_from: r.valid_from,
            valid_to,
            note,
        };
        let agreement = self
            .store
            .approve_request(&r, &approval, &p.describe())
            .await?
            .ok_or_else(|| GovError::Conflict(format!("request {id} was decided meanwhile")))?;
        self.reload().await?;
        Ok(agreement)
    }

    /// Refuse anyone but an owner of the organisation that decides request `r`.
    pub fn require_decider(p: &Principal, r: &AccessRequest) -> GovResult<()> {
        if p.role == Role::Owner && p.organisation.as_deref() == Some(&r.owner_organisation) {
            Ok(())
        } else {
            Err(GovError::Forbidden(format!(
                "only an owner of `{}` decides requests for `{}`",
                r.owner_organisation, r.dataset
            )))
        }
    }

    /// Refuse anyone but a consumer of the organisation that filed request `r` (who may
    /// withdraw it).
    pub fn require_requester(p: &Principal, r: &AccessRequest) -> GovResult<()> {
        if p.role == Role::Consumer && p.organisation.as_deref() == Some(&r.consumer_organisation) {
            Ok(())
        } else {
            Err(GovError::Forbidden(
                "only the requesting organisation withdraws a request".into(),
            ))
        }
    }

    /// Refuse a pending request with a reason (the dataset's owner).
    pub async fn refuse(&self, p: &Principal, id: i64, reason: &str) -> GovResult<AccessRequest> {
        let r = self.request(p, id).await?;
        Self::require_decider(p, &r)?;
        let reason = text("reason", reason, true)?;
        self.close(p, r, RequestStatus::Refused, Some(&reason))
            .await
    }

    /// Withdraw a pending request (the consumer organisation).
    pub async fn withdraw(
        &self,
        p: &Principal,
        id: i64,
        reason: Option<&str>,
    ) -> GovResult<AccessRequest> {
        let r = self.request(p, id).await?;
        Self::require_requester(p, &r)?;
        let reason = reason.map(|r| text("reason", r, false)).transpose()?;
        self.close(p, r, RequestStatus::Withdrawn, reason.as_deref())
            .await
    }

    async fn close(
        &self,
        p: &Principal,
        r: AccessRequest,
        to: RequestStatus,
        reason: Option<&str>,
    ) -> GovResult<AccessRequest> {
        if r.status != RequestStatus::Pending {
            return Err(GovError::Conflict(format!(
                "request {} is {}; only a pending request can be {to}",
                r.id, r.status
            )));
        }
        if !self
            .store
            .close_request(r.id, to, &p.describe(), reason)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "request {} was decided meanwhile",
                r.id
            )));
        }
        self.request(p, r.id).await
    }

    // ---- agreements ----------------------------------------------------------------

    fn sees_agreement(p: &Principal, a: &Agreement) -> bool {
        p.role == Role::Admin
            || (p.role == Role::Consumer
                && p.organisation.as_deref() == Some(&a.consumer_organisation))
            || (p.role == Role::Owner && p.organisation.as_deref() == Some(&a.owner_organisation))
    }

    /// One agreement (admin; the consumer organisation; the dataset's owner).
    pub async fn agreement(&self, p: &Principal, id: i64) -> GovResult<Agreement> {
        match self.store.agreement(id).await? {
            Some(a) if Self::sees_agreement(p, &a) => Ok(a),
            _ => Err(GovError::NotFound(format!("agreement {id}"))),
        }
    }

    /// Agreements visible to the caller, newest first.
    pub async fn agreements(
        &self,
        p: &Principal,
        mut filter: ListFilter,
        page: &Page,
    ) -> GovResult<Vec<Agreement>> {
        scope_filter(p, &mut filter)?;
        Ok(self.store.agreements(&filter, page).await?)
    }

    /// Revoke an active agreement (the dataset's owner, or an admin), with a reason.
    pub async fn revoke(&self, p: &Principal, id: i64, reason: &str) -> GovResult<Agreement> {
        let a = self.agreement(p, id).await?;
        Self::require_admin_or_owner_of(p, &a.owner_organisation)?;
        let reason = text("reason", reason, true)?;
        if a.status != AgreementStatus::Active {
            return Err(GovError::Conflict(format!(
                "agreement {id} is {}; only an active agreement can be revoked",
                a.status
            )));
        }
        if !self
            .store
            .revoke_agreement(id, &p.describe(), &reason)
            .await?
        {
            return Err(GovError::Conflict(format!(
                "agreement {id} changed meanwhile"
            )));
        }
        self.reload().await?;
        self.agreement(p, id).await
    }

    /// The history of a request, agreement, change request, token, system or user, if the caller
    /// may see the entity.
    pub async fn history(
        &self,
        p: &Principal,
        entity: &str,
        id: i64,
    ) -> GovResult<Vec<HistoryEntry>> {
        match entity {
            "request" => drop(self.request(p, id).await?),
            "agreement" => drop(self.agreement(p, id).await?),
            "change_request" => drop(self.change_request(p, id).await?),
            "token" => drop(self.token(p, id).await?),
            "system" => drop(self.system(p, id).await?),
            "user" => self.user_history_visible(p, id).await?,
            other => return Err(GovError::NotFound(format!("entity kind `{other}`"))),
        }
        Ok(self.store.history(entity, &id.to_string()).await?)
    }
}
