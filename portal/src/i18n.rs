//! Languages and the texts of the pages.
//!
//! Every text a page shows lives in a table declared with [`texts!`]: a struct with one
//! field per text and its Latvian and English wording side by side, so that a text missing
//! in one language does not compile. Each page module keeps its own table; [`Common`] holds
//! the texts of the frame every page shares (header, navigation, footer, errors).

/// A language of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// Latvian, the default.
    #[default]
    Lv,
    /// English.
    En,
}

impl Lang {
    /// The language's code (`lv`, `en`), as used in URLs, cookies and `<html lang>`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Lv => "lv",
            Lang::En => "en",
        }
    }

    /// Parse a code.
    pub(crate) fn parse(code: &str) -> Option<Lang> {
        match code {
            "lv" => Some(Lang::Lv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (the switch offers it).
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Lv => Lang::En,
            Lang::En => Lang::Lv,
        }
    }

    /// The language's own name, for the switch.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Lv => "Latviešu",
            Lang::En => "English",
        }
    }

    /// The preferred language of an `Accept-Language` header: English if it comes before
    /// Latvian, Latvian otherwise.
    pub(crate) fn from_accept(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("lv") {
                return Lang::Lv;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Lv
    }
}

/// Declare a table of texts: `texts! { pub(crate) struct Name { field: "lv", "en"; ... } }`
/// makes the struct and `Name::get(lang)`, a `&'static` table in that language.
macro_rules! texts {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident: $lv:expr, $en:expr;)* }) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis struct $name {
            $(pub(crate) $field: &'static str,)*
        }

        impl $name {
            /// The table in `lang`.
            $vis fn get(lang: $crate::i18n::Lang) -> &'static $name {
                const LV: $name = $name { $($field: $lv,)* };
                const EN: $name = $name { $($field: $en,)* };
                match lang {
                    $crate::i18n::Lang::Lv => &LV,
                    $crate::i18n::Lang::En => &EN,
                }
            }
        }
    };
}
pub(crate) use texts;

texts! {
    /// Texts of the frame shared by every page.
    pub(crate) struct Common {
        site: "DAGR datu izplatīšanas platforma", "DAGR data distribution platform";
        skip: "Pāriet uz saturu", "Skip to content";
        nav_label: "Galvenā navigācija", "Main navigation";
        nav_catalog: "Datu katalogs", "Data catalog";
        nav_requests: "Mani pieprasījumi", "My requests";
        nav_agreements: "Līgumi", "Agreements";
        nav_inbox: "Pieprasījumi man", "Inbox";
        nav_flows: "Datu plūsmas", "Data flows";
        nav_changes: "Shēmas izmaiņas", "Schema changes";
        nav_systems: "Sistēmas un atslēgas", "Systems and tokens";
        nav_usage: "Datu izmantošana", "Data usage";
        nav_dashboard: "Pārskats", "Dashboard";
        nav_my_usage: "Kas izmantoja manus datus", "Who used my data";
        signed_in_as: "Pieslēdzies", "Signed in as";
        sign_in: "Pieslēgties", "Sign in";
        sign_out: "Atslēgties", "Sign out";
        language: "Valoda", "Language";
        citizen: "Iedzīvotājs", "Citizen";
        role_admin: "administrators", "administrator";
        role_owner: "datu turētājs", "data owner";
        role_consumer: "datu saņēmējs", "data consumer";
        error_title: "Kaut kas nav izdevies", "Something went wrong";
        error_forbidden: "Jums nav tiesību to darīt", "You are not allowed to do this";
        error_not_found: "Nav atrasts", "Not found";
        error_invalid: "Lūdzu, izlabojiet ievadīto", "Please correct what you entered";
        error_conflict: "To nevar izdarīt pašreizējā stāvoklī", "This cannot be done in the current state";
        error_unavailable: "Pakalpojums īslaicīgi nav pieejams; lūdzu, mēģiniet vēlreiz", "The service is temporarily unavailable; please try again";
        error_csrf: "Veidlapa ir novecojusi vai nav no šī portāla. Atveriet lapu no jauna un mēģiniet vēlreiz.", "The form has expired or did not come from this portal. Open the page again and retry.";
        error_bad_form: "Veidlapu nevarēja nolasīt", "The form could not be read";
        back_home: "Uz sākumu", "Back to the start page";
        footer: "DAGR — valsts datu izplatīšanas un pārvaldības platforma. Katra personas datu izmantošana tiek reģistrēta.", "DAGR — the national data distribution and governance platform. Every use of personal data is logged.";
        api_docs: "API apraksts", "API description";
        yes: "jā", "yes";
        no: "nē", "no";
        cancel: "Atcelt", "Cancel";
        field_error: "Kļūda", "Error";
        none: "Nav", "None";
        all: "Visi", "All";
        filter: "Atlasīt", "Filter";
        next_page: "Nākamā lapa", "Next page";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_first_known() {
        assert_eq!(Lang::from_accept("en-GB,en;q=0.9,lv;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept("lv-LV,en;q=0.5"), Lang::Lv);
        assert_eq!(Lang::from_accept("de-DE"), Lang::Lv);
        assert_eq!(Lang::from_accept(""), Lang::Lv);
    }

    #[test]
    fn both_languages_have_every_text() {
        let (lv, en) = (Common::get(Lang::Lv), Common::get(Lang::En));
        assert_eq!(lv.sign_in, "Pieslēgties");
        assert_eq!(en.sign_in, "Sign in");
        assert_ne!(lv.site, en.site);
    }
}
