//! The texts of the MAP pages, in Latvian and English.

use dagr_admin_api::map::{MapRole, Status};

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
        too_long: "ir par garu; lielākais garums ir", "is too long; the longest accepted is";
        not_a_number: "nav skaitlis", "is not a number";
        not_a_date: "nav datums (GGGG-MM-DD)", "is not a date (YYYY-MM-DD)";
        not_a_time: "nav laiks (GGGG-MM-DDTHH:MM)", "is not a time (YYYY-MM-DDTHH:MM)";
        not_a_choice: "nav viena no iespējām", "is not one of the choices";
        tools_title: "Programmas, pārskati un izgūšana", "Programmes, reports and exports";
        new_programme: "Jauna programma", "New programme";
        new_programme_hint: "budžets, termiņi, atbilstības nosacījumi un vērtēšanas kritēriji.", "budget, dates, eligibility conditions and scoring criteria.";
        new_programme_lead: "Programmas vadītājs izveido programmu savai organizācijai. MAP pārbauda katru nosacījumu un kritēriju, pirms programmu saglabā; nekas netiek saglabāts, ja kaut kas nav kārtībā.", "A programme manager makes a programme for their organisation. MAP checks every condition and criterion before it saves the programme; nothing is saved if anything is wrong.";
        programme_not_made: "Programma netika izveidota.", "The programme was not made.";
        basics_title: "Pamatdati", "The basics";
        programme_title: "Programmas nosaukums", "Programme title";
        budget_eur: "Budžets (EUR)", "Budget (EUR)";
        budget_hint: "Lēmumi nekad nepārsniedz budžetu: katrs piešķīrums to samazina, slēgšana un atsaukšana atgriež neizmaksāto.", "Decisions never pass the budget: each grant commits part of it; closure and withdrawal release what was not paid.";
        max_grant_eur: "Lielākais grants vienam pieteikumam (EUR)", "Largest grant to one application (EUR)";
        co_financing_percent: "Līdzfinansējuma likme (%)", "Co-financing rate (%)";
        co_financing: "Līdzfinansējuma likme", "Co-financing rate";
        co_financing_hint: "Cik procentu no attiecināmajām izmaksām grants var segt (līdz 100).", "The share of eligible costs the grant may cover, in per cent (up to 100).";
        opens_on: "Pieņem pieteikumus no", "Accepts applications from";
        closes_on: "Pieņem pieteikumus līdz (ieskaitot)", "Accepts applications until (inclusive)";
        closes_hint: "Dienas pēc Latvijas laika; pēdējā diena ieskaitīta līdz pusnaktij.", "Days in Latvian time; the last day counts until midnight.";
        aid_regime: "Atbalsta režīms", "Aid regime";
        aid_regime_hint: "Kādiem noteikumiem atbilst programmas atbalsts. Režīms ar griestiem ierobežo viena vienota uzņēmuma atbalstu tā periodā (piemēram, de minimis: 300 000 EUR trīs gados); MAP to pārbauda katrā lēmumā. none: nav komercdarbības atbalsts.", "Under which rules the programme's grants are aid. A regime with a ceiling caps the aid to one undertaking over its period (e.g. de minimis: EUR 300 000 over three years); MAP checks it at every decision. none: not state aid.";
        evaluators_per_application: "Vērtētāju skaits katram pieteikumam", "Evaluators per application";
        evaluators_per_application_hint: "No 1 līdz 9. Kopvērtējums ir visu vērtētāju punktu vidējais.", "1 to 9. The score is the mean of all evaluators' points.";
        eligibility_title: "Atbilstības nosacījumi", "Eligibility conditions";
        eligibility_hint: "Katrs nosacījums ir izteiksme par Uzņēmumu reģistra datu kopas companies laukiem, kā piekļuves rindu ierobežojums, piemēram status = 'active' vai employees < 250. MAP tos pārbauda reģistrā iesniegšanas, lēmuma, maksājuma un slēgšanas brīdī ar jūsu organizācijas līgumiem.", "Each condition is an expression over the fields of the companies dataset, written like a row scope, e.g. status = 'active' or employees < 250. MAP checks them in the register at submission, decision, payment and closure, under your organisation's agreements.";
        eligibility_shown_hint: "MAP šos nosacījumus pārbauda reģistrā iesniegšanas, lēmuma, maksājuma un slēgšanas brīdī.", "MAP checks these conditions in the register at submission, decision, payment and closure.";
        col_condition_name: "Nosaukums", "Name";
        col_predicate: "Nosacījums", "Condition";
        condition_without_predicate: "nosacījumam nav izteiksmes; rinda", "the condition has no expression; line";
        scoresheet_title: "Vērtēšanas kritēriji", "Scoring criteria";
        criteria_title: "Kritēriji", "Criteria";
        criteria_hint: "Katram kritērijam: kods (burti, cipari, _ vai -), svars (> 0), mazākie un lielākie punkti. Kopvērtējums = Σ svars × vidējie punkti / Σ svari. Tukšas rindas netiek ņemtas vērā.", "For each criterion: a code (letters, digits, _ or -), a weight (> 0), the lowest and the highest points. Score = Σ weight × mean points / Σ weights. Empty lines are left out.";
        col_line: "Rinda", "Line";
        col_code: "Kods", "Code";
        col_weight: "Svars", "Weight";
        col_min: "No (punkti)", "From (points)";
        col_max: "Līdz (punkti)", "To (points)";
        version: "versija", "version";
        schedule_title: "Atskaišu grafiks", "Reports due";
        schedule_hint: "Kādas atskaites un cik mēnešus pēc līguma noslēgšanas pieteicējam jāiesniedz. MAP atgādina 14 dienas pirms termiņa un pēc tā.", "Which reports the applicant files, and how many months after the contract. MAP reminds 14 days before each is due, and once it is overdue.";
        col_months: "Mēneši pēc līguma", "Months after the contract";
        months_after_contract: "mēneši pēc līguma", "months after the contract";
        levels_title: "Maksājumu apstiprināšana", "Payment approval";
        levels_hint: "Kas pēc kārtas apstiprina maksājumu, no kādas summas katrs līmenis attiecas; katru līmeni apstiprina cits cilvēks. Ja neaizpildāt: programmas vadītājs, tad grāmatvedis.", "Who approves a payment, in order, and from which amount each level applies; each level is approved by a different person. Left empty: a programme manager, then an accountant.";
        col_from_amount: "No summas (EUR)", "From amount (EUR)";
        from_amount: "no", "from";
        categories_title: "Izmaksu kategorijas", "Cost categories";
        categories_label: "Kategorijas, katra savā rindā", "Categories, one a line";
        categories_hint: "Brīvi nosaukumi, piemēram iekārtas vai apmācības; var atstāt tukšu.", "Free names such as equipment or training; may be left empty.";
        programme_submit: "Izveidot programmu", "Make the programme";
        more_lines: "Vairāk rindu", "More lines";
        role_programme_manager: "programmas vadītājs", "programme manager";
        role_evaluator: "vērtētājs", "evaluator";
        role_approver: "apstiprinātājs", "approver";
        role_accountant: "grāmatvedis", "accountant";
        budget_title: "Budžets", "Budget";
        budget_numbers_hint: "Piesaistīts: piešķirtais un vēl neatbrīvotais; izmaksāts; atgūts pēc līgumu izbeigšanas; atlikums: budžets, kas vēl nav piesaistīts.", "Committed: granted and not released; paid; recovered after terminations; remaining: the budget not committed.";
        committed: "Piesaistīts", "Committed";
        paid: "Izmaksāts", "Paid";
        recovered: "Atgūts", "Recovered";
        terms_title: "Nosacījumi", "Terms";
        programme_applications: "Programmas pieteikumi", "The programme's applications";
        scoresheet_change_title: "Mainīt vērtēšanas kritērijus", "Change the scoring criteria";
        scoresheet_change_hint: "Kamēr pēc pašreizējās versijas nekas nav novērtēts, tā tiek aizstāta; citādi top jauna versija, un jau vērtētie pieteikumi paliek pie savas.", "While nothing was scored on the current version it is replaced; otherwise a new version is made, and applications already in evaluation keep theirs.";
        scoresheet_submit: "Saglabāt kritērijus", "Save the criteria";
        ranking_title: "Rangs", "Ranking";
        ranking_open: "Rangs", "Ranking";
        ranking_list_title: "Novērtētie pieteikumi pēc kopvērtējuma", "Evaluated applications by score";
        ranking_hint: "Novērtētie pieteikumi, labākie augšā (vienādam vērtējumam vienāda vieta). Atlikums, ja finansē: budžets, kas paliktu, ja šo un visus augstāk esošos apstiprinātu pieprasītajā apmērā; negatīvs atlikums iezīmē finansējuma robežu.", "Evaluated applications, best first (equal scores share a place). Remaining if funded: the budget left if this one and every one above it were approved as requested; a negative figure marks the funding line.";
        bulk_hint: "Izvēlieties lēmumu rindās, kuras vēlaties izlemt (summa un pamatojums katrai, vai kopīgs pamatojums zemāk). Katru lēmumu MAP pieņem atsevišķi ar visām pārbaudēm, sākot no augstākā ranga; ja kādu atsaka, pārējie tiek pieņemti, un jūs redzat, kāpēc.", "Choose a decision in the rows you want to decide (an amount and a reason for each, or a common reason below). MAP takes each decision on its own, with all its checks, best-ranked first; a refused one does not stop the others, and you see why.";
        col_rank: "Vieta", "Rank";
        col_remaining_if_funded: "Atlikums, ja finansē", "Remaining if funded";
        below_line: "zem finansējuma robežas", "below the funding line";
        col_decision: "Lēmums", "Decision";
        decision_none: "— neizlemt —", "— not now —";
        decision_approve: "piešķirt", "grant";
        decision_reject: "atteikt", "refuse";
        bulk_reason: "Kopīgs pamatojums", "Common reason";
        bulk_reason_hint: "Izmanto rindām, kurām pamatojums nav ierakstīts.", "Used for the rows without a reason of their own.";
        bulk_submit: "Pieņemt izvēlētos lēmumus", "Take the chosen decisions";
        bulk_refused: "Neviens lēmums netika pieņemts.", "No decision was taken.";
        no_ranked: "Šajā programmā nav novērtētu pieteikumu, kas gaida lēmumu.", "This programme has no evaluated applications awaiting a decision.";
        no_decisions: "izvēlieties lēmumu vismaz vienā rindā", "choose a decision in at least one row";
        too_many_decisions: "vienā reizē var pieņemt ne vairāk kā šādu skaitu lēmumu:", "at most this many decisions can be taken at once:";
        outcomes_title: "Lēmumu rezultāts", "What became of the decisions";
        outcomes_decided: "Pieņemti lēmumi:", "Decisions taken:";
        col_outcome: "Rezultāts", "Outcome";
        outcome_decided: "izlemts", "decided";
        outcome_refused: "atteikts", "refused";
        exports_title: "Izgūšana grāmatvedībai", "Exports for accounting";
        exports_link_hint: "maksājumi, grāmatojumi un dokumenti CSV vai JSON formātā.", "payments, ledger entries and documents as CSV or JSON.";
        exports_hint: "Jūsu organizācijas programmu dati izvēlētajā periodā (Latvijas laika dienas, ieskaitot abas): tie paši, ko dod REST API. Teksta šūnas, kas sākas kā izklājlapas formula, CSV failā sāk ar apostrofu. Vienā failā ne vairāk kā 50 000 rindu; garākam periodam izvēlieties īsāku.", "The data of your organisation's programmes in the period (Latvian days, both included): the same as the REST API gives. Text cells that start like a spreadsheet formula begin with an apostrophe in CSV. At most 50 000 rows a file; for more, choose a shorter period.";
        exports_not_for_you: "Izgūšana ir grāmatvežiem un programmu vadītājiem.", "Exports are for accountants and programme managers.";
        period_title: "Periods", "Period";
        period_from: "No", "From";
        period_to: "Līdz (ieskaitot)", "To (inclusive)";
        period_submit: "Mainīt periodu", "Change the period";
        period_hint: "Saites zemāk izgūst izvēlēto periodu; pēc noklusējuma pēdējās 30 dienas.", "The links below export the period chosen; by default the last 30 days.";
        col_export: "Dati", "Data";
        col_download: "Lejupielādēt", "Download";
        export_payments: "Maksājumu uzdevumi", "Payment orders";
        export_payments_about: "izmaksātie maksājumi: maksājums, pieteikums, programma, reģistrācijas numurs, summa, laiks", "payments paid: payment, application, programme, registration number, amount, time";
        export_accounting: "Grāmatojumi", "Ledger entries";
        export_accounting_about: "piesaiste lēmumā, atbrīvošana, maksājums, atgūšana; katrs ierakstīts darbības transakcijā", "commitment at the decision, release, payment, recovery; each written in the action's transaction";
        export_documents: "Reģistrētie dokumenti", "Registered documents";
        export_documents_about: "ienākošie un izejošie dokumenti: numurs, pieteikums, programma, virziens, veids, datums", "incoming and outgoing documents: number, application, programme, direction, kind, date";
        due_title: "Gaidāmās atskaites", "Reports due";
        due_link_hint: "nokavētās un drīz iesniedzamās atskaites pēc līgumiem.", "reports overdue or due soon under contracts.";
        due_link_hint_applicant: "jūsu līgumu nokavētās un drīz iesniedzamās atskaites.", "the reports of your contracts overdue or due soon.";
        due_hint_staff: "Jūsu organizācijas līgumu atskaites, kuru termiņš ir nokavēts vai pienāk izvēlētajās dienās, tuvākās augšā. Termiņu skaita kalendāra mēnešos no līguma; iesniegta tāda paša veida atskaite sedz agrāko neiesniegto. MAP atgādina pieteicējam un programmas vadītājiem 14 dienas pirms termiņa un pēc tā.", "Reports under your organisation's contracts that are overdue or due within the days chosen, soonest first. Due dates count calendar months from the contract; a report of that kind filed meets the earliest open one. MAP reminds the applicant and the programme managers 14 days before a report is due, and once it is overdue.";
        due_hint_applicant: "Jūsu līgumu atskaites, kuru termiņš ir nokavēts vai pienāk izvēlētajās dienās, tuvākās augšā. Atskaiti iesniedz pieteikuma lapā.", "The reports of your contracts that are overdue or due within the days chosen, soonest first. File a report on the application's page.";
        within_days: "Termiņš nākamo dienu laikā", "Due within (days)";
        within_days_hint: "No 0 līdz 366; nokavētās ir redzamas vienmēr.", "0 to 366; overdue ones are always shown.";
        col_due_on: "Termiņš", "Due on";
        overdue_by: "nokavēta, dienas:", "overdue, days:";
        due_in: "dienas līdz termiņam:", "days left:";
        no_due: "Šajā laikā nav gaidāmu vai nokavētu atskaišu.", "No reports are overdue or due in that time.";
        as_of_title: "Kāds pieteikums bija agrāk", "The application as it was";
        as_of_hint: "Ievadiet laiku (Latvijas laikā), lai redzētu pieteikumu, kāds tas bija tad; vai izvēlieties vēstures ierakstu. Katra apskate tiek reģistrēta pieteicējam redzamajā žurnālā.", "Enter a time (Latvian time) to see the application as it was then, or pick an entry of the history. Every such view is logged where the applicant sees it.";
        as_of_label: "Laiks", "Time";
        as_of_submit: "Rādīt", "Show";
        as_of_shown: "Pieteikums, kāds tas bija", "The application as it was at";
        as_of_readonly: "Tikai apskatei: darbības ir iespējamas tikai pašreizējam pieteikumam.", "For reading only: actions are taken on the application as it is now.";
        as_of_now: "Rādīt pašreizējo stāvokli", "Show it as it is now";
        as_of_then: "Rādīt, kāds bija", "Show as it was";
        col_as_of: "Toreiz", "Then";
        history_as_of_hint: "Katras rindas saite rāda pieteikumu, kāds tas bija uzreiz pēc šīs izmaiņas.", "Each row's link shows the application as it was right after that change.";
        aid_title: "Uzņēmuma saņemtais atbalsts", "Aid to the undertaking";
        aid_hint_counts: "Piešķīrums šajā programmā nevar pārsniegt to, kas atlicis līdz tās režīma griestiem (ieskaitot atbalstu ārpus MAP un uzņēmumus, kas kopā ir viens vienots uzņēmums).", "A grant in this programme cannot exceed what is left under its regime's ceiling (aid granted outside MAP, and the companies that form one undertaking with this one, included).";
        aid_hint_other: "Šīs programmas granti nav komercdarbības atbalsts; uzņēmuma kopsummas parādītas informācijai.", "This programme's grants are not state aid; the undertaking's totals are shown for information.";
        aid_members: "Viens vienots uzņēmums ar:", "One undertaking with:";
        col_regime: "Režīms", "Regime";
        col_legal_basis: "Tiesiskais pamats", "Legal basis";
        col_ceiling: "Griesti", "Ceiling";
        aid_granted: "Piešķirts griestu periodā", "Granted in the ceiling's period";
        aid_remaining: "Atlicis līdz griestiem", "Left under the ceiling";
        already_assigned: "jau norīkots", "already assigned";
        evaluator_pick: "Vērtētājs", "Evaluator";
        evaluator_choose: "— izvēlieties vērtētāju —", "— choose an evaluator —";
        no_evaluators: "Jūsu organizācijai nav neviena vērtētāja; lomu piešķir administrators.", "Your organisation has no evaluators; an admin gives the role.";
        edit_title: "Labot melnrakstu", "Edit the draft";
        edit_hint: "Nosaukumu un pieprasīto summu var mainīt, kamēr pieteikums ir melnraksts vai atgriezts papildināšanai. Summa nevar pārsniegt programmas lielāko grantu.", "The title and the requested amount can be changed while the application is a draft or returned to complete. The amount cannot exceed the programme's largest grant.";
        edit_submit: "Saglabāt izmaiņas", "Save the changes";
        report_hint: "Starpposma atskaite pēc grafika; noslēguma atskaite pirms projekta slēgšanas.", "Interim reports as the schedule says; the final report before the project is closed.";
        invoices_title: "Rēķini", "Invoices";
        invoices_hint: "Rēķini, kuru izmaksas atskaite ietver: piegādātāja reģistrācijas numurs, rēķina numurs un summa. Vienu rēķinu var pieprasīt tikai vienā projektā (dubultā finansējuma pārbaude). Tukšas rindas netiek ņemtas vērā.", "The invoices whose costs the report claims: the supplier's registration number, the invoice number and the amount. An invoice can be claimed in one project only (the double-funding check). Empty lines are left out.";
        col_supplier: "Piegādātājs (reģ. Nr.)", "Supplier (registration no.)";
        col_invoice: "Rēķina Nr.", "Invoice no.";
        invoice_line: "jāaizpilda visi rēķina lauki; rinda", "fill in every field of the invoice; line";
        done_edit: "Izmaiņas saglabātas.", "The changes were saved.";
        done_programme_created: "Programma izveidota. Pieteicēji to redz, un tā pieņem pieteikumus norādītajos termiņos.", "The programme was made. Applicants see it, and it accepts applications between its dates.";
        done_scoresheet: "Vērtēšanas kritēriji saglabāti.", "The scoring criteria were saved.";
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

/// A MAP role in words.
pub(crate) fn role_text(t: &MapText, r: MapRole) -> &'static str {
    match r {
        MapRole::ProgrammeManager => t.role_programme_manager,
        MapRole::Evaluator => t.role_evaluator,
        MapRole::Approver => t.role_approver,
        MapRole::Accountant => t.role_accountant,
    }
}

/// A kind of report (`interim`, `final`) in words (as given if it is neither).
pub(crate) fn kind_text(t: &MapText, kind: &str) -> &'static str {
    match kind {
        "interim" => t.kind_interim,
        "final" => t.kind_final,
        _ => "—",
    }
}

/// The confirmation of a `?done=` key (the action's name, or `created`, `conflict`).
pub(crate) fn done_texts(t: &MapText) -> [(&'static str, &'static str); 22] {
    [
        ("created", t.done_created),
        ("edit", t.done_edit),
        ("programme_created", t.done_programme_created),
        ("scoresheet", t.done_scoresheet),
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
