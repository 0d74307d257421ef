//! The texts of the MAP pages, in Latvian and English.

use dagr_admin_api::map::Status;

use crate::i18n::texts;

texts! {
    /// Texts of the MAP pages (grant management).
    pub(crate) struct MapText {
        nav: "Granti", "Grants";
        title: "Granti", "Grants";
        lead_staff: "Jūsu organizācijas grantu pieteikumi, jaunākie augšā.", "Your organisation's grant applications, newest first.";
        lead_evaluator: "Pieteikumi, kuru vērtēšanai esat norīkots.", "The applications you were assigned to evaluate.";
        lead_applicant: "Jūsu grantu pieteikumi un programmas, kurās varat pieteikties.", "Your grant applications and the programmes you can apply to.";
        help_title: "Kā tas notiek", "How it works";
        help_applicant: "Jūs iesniedzat pieteikumu uzņēmuma vārdā, kuru drīkstat pārstāvēt. Uzņēmuma datus un jūsu pārstāvības tiesības MAP nolasa no reģistriem; katrs šāds nolasījums tiek reģistrēts, un jūs to redzat lapā „Kas izmantoja manus datus”. Pēc iesniegšanas programmas vadītājs pārbauda pilnīgumu, vērtētāji piešķir punktus, un lēmumu pieņem apstiprinātājs.", "You file an application for a company you may represent. MAP reads the company's data and your right to represent it from the registers; every such read is logged, and you see it on the “Who used my data” page. After you submit, the programme manager checks completeness, evaluators score it, and an approver decides.";
        help_staff: "Programmas vadītājs pārbauda iesniegtos pieteikumus un norīko vērtētājus; vērtētāji pirms atvēršanas paziņo par interešu konfliktu un vērtē katru kritēriju; apstiprinātājs piešķir summu vai atsaka; grāmatvedis apstiprina un izmaksā maksājumus. Katrs reģistru nolasījums notiek ar jūsu organizācijas līgumiem, tiek reģistrēts un ir redzams iesaistītajām personām.", "The programme manager checks submitted applications and assigns evaluators; evaluators declare any conflict of interest before opening one and score each criterion; an approver grants an amount or refuses; an accountant approves and pays payments. Every register read runs under your organisation's agreements, is logged, and is visible to the people concerned.";
        no_map: "Grantu vadība (MAP) jums nav pieejama.", "Grant management (MAP) is not available to you.";
        no_map_hint: "MAP izmanto grantu devēja darbinieki ar MAP lomām un iedzīvotāji, kas piesakās uzņēmuma vārdā.", "MAP is used by people of a grantor with MAP roles and by citizens applying for a company.";
        filter_title: "Atlasīt pieteikumus", "Filter the applications";
        programme: "Programma", "Programme";
        all_programmes: "Visas programmas", "All programmes";
        status: "Statuss", "Status";
        all_statuses: "Visi statusi", "All statuses";
        list_title: "Pieteikumi", "Applications";
        count_shown: "Parādīti pieteikumi:", "Applications shown:";
        more_follow: "Ir vēl vecāki pieteikumi.", "There are older applications.";
        no_applications: "Pieteikumu nav.", "No applications.";
        col_id: "Nr.", "No.";
        col_title: "Nosaukums", "Title";
        col_company: "Uzņēmums", "Company";
        col_requested: "Pieprasīts", "Requested";
        col_granted: "Piešķirts", "Granted";
        col_score: "Vērtējums", "Score";
        col_updated: "Mainīts", "Changed";
        programmes_title: "Programmas", "Programmes";
        col_budget: "Budžets", "Budget";
        col_remaining: "Atlikums", "Remaining";
        col_max_grant: "Lielākais grants", "Largest grant";
        col_open: "Pieņem pieteikumus", "Accepts applications";
        until: "līdz", "to";
        file_title: "Jauns pieteikums", "New application";
        file_hint: "Uzņēmuma nosaukumu un datus MAP ņems no Uzņēmumu reģistra; jums tie nav jāraksta.", "MAP takes the company's name and data from the Register of Enterprises; you do not type them.";
        registration_number: "Uzņēmuma reģistrācijas numurs", "Company registration number";
        app_title: "Projekta nosaukums", "Project title";
        requested_amount: "Pieprasītā summa (EUR)", "Requested amount (EUR)";
        file_submit: "Saglabāt melnrakstu", "Save as a draft";
        inbox_title: "Paziņojumi", "Messages";
        not_an_id: "nav programmas numurs", "is not a programme number";
        not_an_amount: "nav summa eiro (piemēram, 12500 vai 12500,50)", "is not an amount in euro (e.g. 12500 or 12500.50)";
        application: "Pieteikums Nr. ", "Application no. ";
        company: "Pieteicējs (no reģistra)", "Applicant (from the register)";
        legal_form: "Juridiskā forma", "Legal form";
        register_status: "Statuss reģistrā", "Status in the register";
        score: "Kopvērtējums", "Overall score";
        not_yet: "vēl nav", "not yet";
        evaluators: "Vērtētāji", "Evaluators";
        created: "Izveidots", "Created";
        next_title: "Kas notiek tālāk", "What happens next";
        evidence_title: "Reģistru nolasījumi", "Register reads";
        evidence_hint: "Katrs nolasījums ir reģistrēts lietojuma auditā; personas, kuru dati nolasīti, to redz lapā „Kas izmantoja manus datus”.", "Every read is recorded in the usage audit; the people whose data were read see it on the “Who used my data” page.";
        col_step: "Solis", "Step";
        col_dataset: "Datu kopa", "Dataset";
        col_version: "Versija", "Version";
        col_time: "Laiks", "Time";
        col_records: "Piekļuves ieraksti", "Access records";
        col_passed: "Izpildīts", "Passed";
        scores_title: "Vērtējumi", "Scores";
        scores_hint: "Kamēr nav saņemti visi vērtējumi, katrs vērtētājs redz tikai savu.", "Until every score is in, each evaluator sees only their own.";
        col_evaluator: "Vērtētājs", "Evaluator";
        col_points: "Punkti", "Points";
        col_justification: "Pamatojums", "Justification";
        payments_title: "Maksājumi", "Payments";
        col_amount: "Summa", "Amount";
        col_approvals: "Apstiprinājumi", "Approvals";
        reports_title: "Atskaites", "Reports";
        col_kind: "Veids", "Kind";
        col_costs: "Attiecināmās izmaksas", "Eligible costs";
        documents_title: "Dokumenti", "Documents";
        col_number: "Reģistrācijas Nr.", "Registration no.";
        col_date: "Datums", "Date";
        col_direction: "Virziens", "Direction";
        history_title: "Vēsture", "History";
        col_change: "Izmaiņa", "Change";
        col_action: "Darbība", "Action";
        col_by: "Kas", "Who";
        col_reason: "Pamatojums", "Reason";
        access_title: "Kas atvēra pieteikumu un ko nolasīja", "Who opened the application and what was read";
        col_role: "Loma", "Role";
        col_organisation: "Organizācija", "Organisation";
        col_what: "Kas", "What";
        actions_title: "Darbības", "Actions";
        reason: "Pamatojums", "Reason";
        submit_title: "Iesniegt", "Submit";
        submit_hint: "Pēc iesniegšanas MAP vēlreiz pārbauda pārstāvības tiesības un atbilstību programmas nosacījumiem reģistros.", "On submission MAP checks again the right to represent and the programme's eligibility conditions in the registers.";
        submit: "Iesniegt pieteikumu", "Submit the application";
        withdraw_title: "Atsaukt", "Withdraw";
        withdraw: "Atsaukt pieteikumu", "Withdraw the application";
        withdraw_confirm: "Atsaukt pieteikumu? To nevar atcelt.", "Withdraw the application? This cannot be undone.";
        return_title: "Atgriezt papildināšanai", "Return to complete";
        return_button: "Atgriezt pieteicējam", "Return to the applicant";
        accept_title: "Pieteikums ir pilnīgs", "The application is complete";
        accept: "Pieņemt vērtēšanai", "Accept for evaluation";
        assign_title: "Norīkot vērtētāju", "Assign an evaluator";
        assign_hint: "MAP reģistrā pārbauda, vai vērtētājs nav pieteicēja amatpersona (interešu konflikts).", "MAP checks in the register that the evaluator is no official of the applicant (conflict of interest).";
        evaluator_login: "Vērtētāja lietotājvārds", "The evaluator's login";
        assign: "Norīkot", "Assign";
        declare_title: "Interešu konflikta apliecinājums", "Declaration on conflicts of interest";
        declare_hint: "Pirms pieteikuma atvēršanas apliecināt, vai jums ir interešu konflikts ar pieteicēju. Ja ir, jūs tiekat atsaukts no šī pieteikuma vērtēšanas.", "Before opening the application, declare whether you have a conflict of interest with the applicant. If you do, you are withdrawn from evaluating it.";
        declare_none: "Man nav interešu konflikta", "I have no conflict of interest";
        declare_conflict: "Man ir interešu konflikts", "I have a conflict of interest";
        score_title: "Vērtēt", "Score";
        score_hint: "Punkti katram kritērijam (no–līdz) un pamatojums. Citu vērtētāju punktus redzēsiet, kad būs saņemti visi vērtējumi.", "Points for each criterion (from–to) and a justification. You see the other evaluators' points once every score is in.";
        criterion: "Kritērijs", "Criterion";
        weight: "svars", "weight";
        justification: "Pamatojums", "Justification";
        score_submit: "Saglabāt vērtējumu", "Save the score";
        approve_title: "Piešķirt", "Grant";
        approve_hint: "Summa nevar pārsniegt pieprasīto, lielāko grantu, programmas atlikumu un de minimis griestus; MAP vēlreiz pārbauda atbilstību reģistrā.", "The amount cannot exceed the requested amount, the largest grant, what is left of the budget or the de minimis ceiling; MAP checks eligibility in the register again.";
        amount: "Summa (EUR)", "Amount (EUR)";
        approve: "Piešķirt grantu", "Grant";
        reject_title: "Atteikt", "Refuse";
        reject: "Atteikt", "Refuse";
        reject_confirm: "Atteikt pieteikumu?", "Refuse the application?";
        contract_title: "Līgums", "Contract";
        contract: "Noslēgt līgumu", "Sign the contract";
        payment_title: "Pieprasīt maksājumu", "Request a payment";
        payment_request: "Pieprasīt", "Request";
        approve_payment: "Apstiprināt maksājumu", "Approve the payment";
        pay: "Izmaksāt", "Pay";
        payment_no: "Maksājums Nr. ", "Payment no. ";
        report_title: "Iesniegt atskaiti", "File a report";
        report_kind: "Atskaites veids", "Kind of report";
        kind_interim: "starpposma", "interim";
        kind_final: "noslēguma", "final";
        report_costs: "Attiecināmās izmaksas (EUR)", "Eligible costs (EUR)";
        report_text: "Atskaite", "Report";
        report_submit: "Iesniegt atskaiti", "File the report";
        approve_report: "Apstiprināt atskaiti", "Approve the report";
        report_no: "Atskaite Nr. ", "Report no. ";
        close_title: "Slēgt projektu", "Close the project";
        close: "Slēgt", "Close";
        terminate_title: "Izbeigt līgumu", "Terminate the contract";
        recovery: "Atgūstamā summa (EUR)", "Amount to recover (EUR)";
        terminate: "Izbeigt", "Terminate";
        terminate_confirm: "Izbeigt līgumu? To nevar atcelt.", "Terminate the contract? This cannot be undone.";
        refused: "Darbība netika veikta; nekas nav mainīts.", "The action was not taken; nothing changed.";
        done_created: "Pieteikums saglabāts kā melnraksts. Pārbaudiet to un iesniedziet.", "The application was saved as a draft. Check it and submit it.";
        done_submit: "Pieteikums iesniegts. Programmas vadītājs pārbaudīs tā pilnīgumu.", "The application was submitted. The programme manager will check that it is complete.";
        done_withdraw: "Pieteikums atsaukts.", "The application was withdrawn.";
        done_return: "Pieteikums atgriezts pieteicējam.", "The application was returned to the applicant.";
        done_accept: "Pieteikums pieņemts vērtēšanai.", "The application was accepted for evaluation.";
        done_assign: "Vērtētājs norīkots.", "The evaluator was assigned.";
        done_declare: "Apliecinājums saglabāts.", "The declaration was saved.";
        done_conflict: "Jūs paziņojāt par interešu konfliktu un esat atsaukts no šī pieteikuma vērtēšanas.", "You declared a conflict of interest and were withdrawn from evaluating that application.";
        done_score: "Vērtējums saglabāts.", "The score was saved.";
        done_approve: "Grants piešķirts.", "The grant was awarded.";
        done_reject: "Pieteikums atteikts.", "The application was refused.";
        done_contract: "Līgums noslēgts.", "The contract was signed.";
        done_payment: "Maksājums pieprasīts.", "The payment was requested.";
        done_approve_payment: "Maksājums apstiprināts.", "The payment was approved.";
        done_pay: "Maksājums izmaksāts.", "The payment was paid.";
        done_report: "Atskaite iesniegta.", "The report was filed.";
        done_approve_report: "Atskaite apstiprināta.", "The report was approved.";
        done_close: "Projekts slēgts.", "The project was closed.";
        done_terminate: "Līgums izbeigts.", "The contract was terminated.";
        unknown_action: "nav zināma darbība", "is not a known action";
        st_draft: "melnraksts", "draft";
        st_submitted: "iesniegts", "submitted";
        st_returned: "atgriezts papildināšanai", "returned to complete";
        st_complete: "pilnīgs, gaida vērtētājus", "complete, awaiting evaluators";
        st_in_evaluation: "tiek vērtēts", "in evaluation";
        st_evaluated: "novērtēts, gaida lēmumu", "evaluated, awaiting the decision";
        st_approved: "apstiprināts", "approved";
        st_rejected: "atteikts", "rejected";
        st_contracted: "līgums noslēgts", "under contract";
        st_closed: "slēgts", "closed";
        st_withdrawn: "atsaukts", "withdrawn";
        st_terminated: "līgums izbeigts", "contract terminated";
        next_draft: "Melnraksts vēl nav iesniegts. Kad iesniegsiet, MAP reģistros pārbaudīs atbilstību, un programmas vadītājs pārbaudīs pilnīgumu.", "The draft is not filed yet. When you submit it, MAP checks eligibility in the registers and the programme manager checks completeness.";
        next_submitted: "Programmas vadītājs pārbauda pilnīgumu: pieņem vērtēšanai vai atgriež pieteicējam ar pamatojumu.", "The programme manager checks completeness: accepts it for evaluation or returns it to the applicant with a reason.";
        next_returned: "Pieteicējs papildina pieteikumu un iesniedz to vēlreiz.", "The applicant completes the application and submits it again.";
        next_complete: "Programmas vadītājs norīko vērtētājus; MAP reģistrā pārbauda, vai viņiem nav interešu konflikta.", "The programme manager assigns evaluators; MAP checks in the register that they have no conflict of interest.";
        next_in_evaluation: "Vērtētāji paziņo par interešu konfliktu un vērtē katru kritēriju. Kad visi vērtējumi saņemti, lēmumu pieņem apstiprinātājs.", "Evaluators declare on conflicts of interest and score each criterion. When every score is in, an approver decides.";
        next_evaluated: "Apstiprinātājs piešķir summu vai atsaka ar pamatojumu; MAP vēlreiz pārbauda atbilstību reģistrā.", "An approver grants an amount or refuses with a reason; MAP checks eligibility in the register again.";
        next_approved: "Programmas vadītājs noslēdz līgumu ar pieteicēju.", "The programme manager signs the contract with the applicant.";
        next_rejected: "Pieteikums ir atteikts; pamatojums ir vēsturē.", "The application was refused; the reason is in the history.";
        next_contracted: "Pieteicējs pieprasa maksājumus un iesniedz atskaites; programmas vadītājs un grāmatvedis tos apstiprina; pēc noslēguma atskaites projektu slēdz.", "The applicant requests payments and files reports; the programme manager and the accountant approve them; after the final report the project is closed.";
        next_closed: "Projekts ir slēgts; neizmaksātā daļa atgriezta programmas budžetā.", "The project is closed; the unpaid rest went back to the programme's budget.";
        next_withdrawn: "Pieteicējs pieteikumu atsauca.", "The applicant withdrew the application.";
        next_terminated: "Līgums izbeigts; nepamatoti izmaksātais tiek atgūts.", "The contract was terminated; what was paid unduly is recovered.";
    }
}

/// The status in words.
pub(crate) fn status_text(t: &MapText, s: Status) -> &'static str {
    match s {
        Status::Draft => t.st_draft,
        Status::Submitted => t.st_submitted,
        Status::Returned => t.st_returned,
        Status::Complete => t.st_complete,
        Status::InEvaluation => t.st_in_evaluation,
        Status::Evaluated => t.st_evaluated,
        Status::Approved => t.st_approved,
        Status::Rejected => t.st_rejected,
        Status::Contracted => t.st_contracted,
        Status::Closed => t.st_closed,
        Status::Withdrawn => t.st_withdrawn,
        Status::Terminated => t.st_terminated,
    }
}

/// What happens next in status `s`, and who decides.
pub(crate) fn next_text(t: &MapText, s: Status) -> &'static str {
    match s {
        Status::Draft => t.next_draft,
        Status::Submitted => t.next_submitted,
        Status::Returned => t.next_returned,
        Status::Complete => t.next_complete,
        Status::InEvaluation => t.next_in_evaluation,
        Status::Evaluated => t.next_evaluated,
        Status::Approved => t.next_approved,
        Status::Rejected => t.next_rejected,
        Status::Contracted => t.next_contracted,
        Status::Closed => t.next_closed,
        Status::Withdrawn => t.next_withdrawn,
        Status::Terminated => t.next_terminated,
    }
}

/// The confirmation of a `?done=` key (the action's name, or `created`, `conflict`).
pub(crate) fn done_texts(t: &MapText) -> [(&'static str, &'static str); 19] {
    [
        ("created", t.done_created),
        ("submit", t.done_submit),
        ("withdraw", t.done_withdraw),
        ("return", t.done_return),
        ("accept", t.done_accept),
        ("assign", t.done_assign),
        ("declare", t.done_declare),
        ("conflict", t.done_conflict),
        ("score", t.done_score),
        ("approve", t.done_approve),
        ("reject", t.done_reject),
        ("contract", t.done_contract),
        ("request_payment", t.done_payment),
        ("approve_payment", t.done_approve_payment),
        ("pay", t.done_pay),
        ("report", t.done_report),
        ("approve_report", t.done_approve_report),
        ("close", t.done_close),
        ("terminate", t.done_terminate),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    /// Every text of the table, in field order, through its `Debug` form.
    fn all(t: &MapText) -> Vec<String> {
        let dbg = format!("{t:?}");
        dbg.split(": \"")
            .skip(1)
            .map(|s| s.split("\", ").next().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn every_text_is_in_both_languages() {
        let (lv, en) = (MapText::get(Lang::Lv), MapText::get(Lang::En));
        let (lv_all, en_all) = (all(lv), all(en));
        assert_eq!(lv_all.len(), en_all.len());
        assert!(lv_all.len() > 150, "{}", lv_all.len());
        for (l, e) in lv_all.iter().zip(&en_all) {
            assert!(
                !l.trim().is_empty() && !e.trim().is_empty(),
                "{l:?} / {e:?}"
            );
        }
        assert_eq!((lv.nav, en.nav), ("Granti", "Grants"));
        // Every status has words and a next step, different in the two languages.
        for s in Status::ALL {
            assert_ne!(status_text(lv, s), status_text(en, s), "{s:?}");
            assert_ne!(next_text(lv, s), next_text(en, s), "{s:?}");
            assert!(!next_text(en, s).is_empty());
        }
        // Every confirmation has a key once.
        let done = done_texts(en);
        for (i, (k, v)) in done.iter().enumerate() {
            assert!(!v.is_empty());
            assert!(done[i + 1..].iter().all(|(k2, _)| k2 != k), "{k} twice");
        }
    }
}
