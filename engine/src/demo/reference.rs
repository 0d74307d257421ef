//! Reference data: municipalities, streets, names, legal forms, NACE classes.

// ---------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------

/// A municipality of the 2021 administrative-territorial reform.
pub(super) struct Municipality {
    pub(super) name: &'static str,
    /// Population in hundreds (2023, rounded): the weight of the municipality.
    pub(super) population: u32,
    pub(super) lat: f64,
    pub(super) lon: f64,
    /// Radius in km of the disc around the centre that stands for the municipality's
    /// territory: the demo's addresses and properties lie in it. The discs of different
    /// municipalities do not overlap (a test checks), so a location names one municipality.
    pub(super) radius_km: f64,
    /// A state city (`true`) or a novads.
    pub(super) city: bool,
    /// Postcode range `LV-lo` ..= `LV-hi`.
    pub(super) post: (u16, u16),
    /// A state city: its cadastral territory code; a novads: the two-digit former district
    /// code, the first two digits of its territories' codes.
    pub(super) cadastre: u16,
    /// The novads' main town.
    pub(super) town: &'static str,
    /// Genitive stems of some of its parishes (`pagasti`).
    pub(super) parishes: &'static [&'static str],
}

pub(super) const fn city(
    name: &'static str,
    population: u32,
    lat: f64,
    lon: f64,
    radius_km: f64,
    post: (u16, u16),
    cadastre: u16,
) -> Municipality {
    Municipality {
        name,
        population,
        lat,
        lon,
        radius_km,
        city: true,
        post,
        cadastre,
        town: name,
        parishes: &[],
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) const fn novads(
    name: &'static str,
    population: u32,
    lat: f64,
    lon: f64,
    radius_km: f64,
    post: (u16, u16),
    cadastre: u16,
    town: &'static str,
    parishes: &'static [&'static str],
) -> Municipality {
    Municipality {
        name,
        population,
        lat,
        lon,
        radius_km,
        city: false,
        post,
        cadastre,
        town,
        parishes,
    }
}

#[rustfmt::skip]
pub(super) const MUNI: [Municipality; 43] = [
    city("Rīga", 6050, 56.9496, 24.1052, 6.2, (1001, 1084), 100),
    city("Daugavpils", 790, 55.8750, 26.5356, 4.3, (5401, 5417), 500),
    city("Jelgava", 550, 56.6511, 23.7214, 3.9, (3001, 3008), 900),
    city("Jūrmala", 500, 56.9680, 23.7704, 3.0, (2008, 2016), 1300),
    city("Liepāja", 670, 56.5047, 21.0108, 3.9, (3401, 3417), 1700),
    city("Rēzekne", 270, 56.5099, 27.3332, 2.2, (4601, 4604), 2100),
    city("Ventspils", 330, 57.3894, 21.5606, 3.8, (3601, 3602), 2700),
    novads("Aizkraukles novads", 310, 56.6048, 25.2551, 17.8, (5101, 5140), 32, "Aizkraukle", &["Aizkraukles", "Kokneses", "Skrīveru"]),
    novads("Alūksnes novads", 140, 57.4226, 27.0466, 13.7, (4301, 4350), 36, "Alūksne", &["Jaunalūksnes", "Mārkalnes", "Annas"]),
    novads("Augšdaugavas novads", 240, 55.9500, 26.8800, 7.4, (5418, 5475), 44, "Ilūkste", &["Naujenes", "Kalkūnes", "Salienas"]),
    novads("Ādažu novads", 210, 57.0749, 24.3237, 8.4, (2161, 2165), 80, "Ādaži", &["Carnikavas", "Ādažu"]),
    novads("Balvu novads", 180, 57.1313, 27.2656, 15.5, (4501, 4595), 38, "Balvi", &["Bērzpils", "Kubulu", "Vīksnas"]),
    novads("Bauskas novads", 420, 56.4079, 24.1939, 19.5, (3901, 3945), 40, "Bauska", &["Codes", "Īslīces", "Vecumnieku"]),
    novads("Cēsu novads", 400, 57.3119, 25.2710, 9.7, (4101, 4150), 42, "Cēsis", &["Vaives", "Priekuļu", "Liepas"]),
    novads("Dienvidkurzemes novads", 340, 56.4500, 21.4000, 20.0, (3430, 3490), 64, "Grobiņa", &["Nīcas", "Rucavas", "Vaiņodes"]),
    novads("Dobeles novads", 280, 56.6258, 23.2788, 14.1, (3701, 3745), 46, "Dobele", &["Auru", "Bērzes", "Tērvetes"]),
    novads("Gulbenes novads", 190, 57.1749, 26.7527, 14.8, (4401, 4430), 50, "Gulbene", &["Stradu", "Litenes", "Lejasciema"]),
    novads("Jelgavas novads", 310, 56.4800, 23.6200, 11.5, (3009, 3050), 54, "Kalnciems", &["Ozolnieku", "Svētes", "Elejas"]),
    novads("Jēkabpils novads", 420, 56.4990, 25.8574, 16.5, (5201, 5240), 56, "Jēkabpils", &["Rubenes", "Salas", "Zasas"]),
    novads("Krāslavas novads", 200, 55.8951, 27.1680, 10.9, (5601, 5670), 60, "Krāslava", &["Kalniešu", "Indras", "Izvaltas"]),
    novads("Kuldīgas novads", 280, 56.9677, 21.9680, 17.5, (3301, 3330), 62, "Kuldīga", &["Padures", "Rumbas", "Rudbāržu"]),
    novads("Ķekavas novads", 300, 56.7800, 24.2700, 3.3, (2123, 2127), 80, "Ķekava", &["Daugmales", "Ķekavas"]),
    novads("Limbažu novads", 290, 57.5133, 24.7130, 18.5, (4001, 4040), 66, "Limbaži", &["Katvaru", "Skultes", "Vidrižu"]),
    novads("Līvānu novads", 100, 56.3539, 26.1759, 8.0, (5316, 5335), 76, "Līvāni", &["Rožupes", "Turku", "Jersikas"]),
    novads("Ludzas novads", 220, 56.5461, 27.7192, 21.1, (5701, 5750), 68, "Ludza", &["Istras", "Pildas", "Cirmas"]),
    novads("Madonas novads", 310, 56.8534, 26.2170, 26.1, (4801, 4837), 70, "Madona", &["Lazdonas", "Praulienas", "Ļaudonas"]),
    novads("Mārupes novads", 340, 56.8750, 23.8800, 5.2, (2166, 2169), 80, "Mārupe", &["Babītes", "Salas", "Mārupes"]),
    novads("Ogres novads", 560, 56.8162, 24.6140, 11.4, (5001, 5060), 74, "Ogre", &["Ogresgala", "Taurupes", "Suntažu"]),
    novads("Olaines novads", 200, 56.7852, 23.9382, 5.0, (2110, 2114), 80, "Olaine", &["Olaines"]),
    novads("Preiļu novads", 170, 56.2942, 26.7246, 12.2, (5301, 5315), 76, "Preiļi", &["Aizkalnes", "Pelēču", "Riebiņu"]),
    novads("Rēzeknes novads", 270, 56.4000, 27.0500, 10.3, (4605, 4650), 78, "Viļāni", &["Maltas", "Griškānu", "Nautrēnu"]),
    novads("Ropažu novads", 320, 56.9900, 24.6600, 7.4, (2128, 2140), 80, "Vangaži", &["Ropažu", "Stopiņu", "Garkalnes"]),
    novads("Salaspils novads", 240, 56.8614, 24.3497, 4.9, (2115, 2122), 80, "Salaspils", &["Salaspils"]),
    novads("Saldus novads", 280, 56.6637, 22.4881, 21.0, (3801, 3862), 84, "Saldus", &["Zvārdes", "Novadnieku", "Lutriņu"]),
    novads("Saulkrastu novads", 65, 57.2640, 24.4144, 5.6, (2160, 2160), 80, "Saulkrasti", &["Sējas"]),
    novads("Siguldas novads", 310, 57.1537, 24.8533, 11.8, (2150, 2159), 80, "Sigulda", &["Allažu", "Mores", "Inčukalna"]),
    novads("Smiltenes novads", 190, 57.4244, 25.9016, 15.8, (4729, 4750), 94, "Smiltene", &["Blomes", "Launkalnes", "Palsmanes"]),
    novads("Talsu novads", 380, 57.2446, 22.5889, 23.0, (3201, 3295), 88, "Talsi", &["Laucienes", "Ārlavas", "Strazdes"]),
    novads("Tukuma novads", 420, 56.9671, 23.1554, 21.7, (3101, 3150), 90, "Tukums", &["Slampes", "Irlavas", "Zentenes"]),
    novads("Valkas novads", 85, 57.7752, 26.0174, 13.6, (4701, 4728), 94, "Valka", &["Ērģemes", "Kārķu", "Vijciema"]),
    novads("Valmieras novads", 520, 57.5385, 25.4264, 14.3, (4201, 4240), 96, "Valmiera", &["Kocēnu", "Brenguļu", "Trikātas"]),
    novads("Varakļānu novads", 30, 56.6088, 26.7546, 7.5, (4838, 4839), 70, "Varakļāni", &["Murmastienes", "Varakļānu"]),
    novads("Ventspils novads", 110, 57.2500, 21.8500, 13.7, (3603, 3630), 98, "Piltene", &["Ances", "Užavas", "Vārves"]),
];

/// The 43 municipalities of Latvia since the 2021 reform: 7 state cities, then 36 novadi.
pub const MUNICIPALITIES: [&str; 43] = {
    let mut out = [""; 43];
    let mut i = 0;
    while i < 43 {
        out[i] = MUNI[i].name;
        i += 1;
    }
    out
};

/// Index of Rīga in [`MUNI`].
pub(super) const RIGA: usize = 0;

#[rustfmt::skip]
pub(super) const RIGA_STREETS: &[&str] = &[
    "Brīvības iela", "Krišjāņa Barona iela", "Elizabetes iela", "Tērbatas iela",
    "Aleksandra Čaka iela", "Krišjāņa Valdemāra iela", "Gertrūdes iela", "Lāčplēša iela",
    "Maskavas iela", "Dzelzavas iela", "Brīvības gatve", "Vienības gatve", "Kārļa Ulmaņa gatve",
    "Ropažu iela", "Augusta Deglava iela", "Imantas iela", "Anniņmuižas bulvāris",
    "Kurzemes prospekts", "Lielvārdes iela", "Stirnu iela", "Ūnijas iela", "Zolitūdes iela",
    "Slokas iela", "Kalnciema iela", "Tallinas iela", "Miera iela", "Avotu iela", "Bruņinieku iela",
    "Mārupes iela", "Ulbrokas iela",
];

#[rustfmt::skip]
pub(super) const TOWN_STREETS: &[&str] = &[
    "Brīvības iela", "Rīgas iela", "Skolas iela", "Dzirnavu iela", "Lielā iela", "Pils iela",
    "Baznīcas iela", "Dārza iela", "Meža iela", "Ezera iela", "Parka iela", "Stacijas iela",
    "Upes iela", "Liepu iela", "Bērzu iela", "Priežu iela", "Ozolu iela", "Saules iela",
    "Pasta iela", "Tirgus iela", "Raiņa iela", "Kalna iela", "Avotu iela", "Celtnieku iela",
    "Jaunā iela", "Lauku iela", "Strēlnieku iela", "Zemnieku iela", "Ābeļu iela", "Smilšu iela",
];

#[rustfmt::skip]
pub(super) const HOMESTEADS: &[&str] = &[
    "Ozoli", "Kalnieši", "Liepas", "Bērzi", "Priedes", "Ābeles", "Lejnieki", "Jaunzemji",
    "Vecsētas", "Dzērves", "Egles", "Rozes", "Pīlādži", "Mežmalas", "Kārkli", "Avoti", "Lazdas",
    "Ievas", "Saulieši", "Upeslejas", "Silmaļi", "Dārziņi", "Straumes", "Vītoli",
];

#[rustfmt::skip]
pub(super) const MALE_LV: &[&str] = &[
    "Jānis", "Andris", "Mārtiņš", "Kristaps", "Edgars", "Roberts", "Artūrs", "Dāvis", "Pēteris",
    "Ivars", "Gatis", "Raivis", "Oskars", "Reinis", "Toms", "Juris", "Aivars", "Guntis", "Māris",
    "Uldis", "Valdis", "Kārlis", "Rihards", "Ēriks", "Normunds", "Dainis", "Armands", "Gints",
    "Rolands", "Krišjānis", "Emīls", "Markuss", "Ralfs", "Gustavs", "Aleksandrs", "Edvards",
];

#[rustfmt::skip]
pub(super) const MALE_SLAVIC: &[&str] = &[
    "Aleksandrs", "Sergejs", "Dmitrijs", "Vladimirs", "Andrejs", "Igors", "Nikolajs", "Jurijs",
    "Viktors", "Olegs", "Maksims", "Deniss", "Artjoms", "Vadims", "Mihails", "Aleksejs",
];

#[rustfmt::skip]
pub(super) const FEMALE_LV: &[&str] = &[
    "Anna", "Līga", "Ilze", "Kristīne", "Inese", "Laura", "Elīza", "Marta", "Sanita", "Dace",
    "Zane", "Agnese", "Baiba", "Ieva", "Evija", "Linda", "Santa", "Madara", "Sabīne", "Alise",
    "Paula", "Emīlija", "Sofija", "Aija", "Inga", "Gunta", "Rasma", "Vija", "Daina", "Māra",
    "Jolanta", "Signe", "Kristīna", "Everita",
];

#[rustfmt::skip]
pub(super) const FEMALE_SLAVIC: &[&str] = &[
    "Jeļena", "Natālija", "Olga", "Tatjana", "Irina", "Svetlana", "Marina", "Jūlija", "Anastasija",
    "Viktorija", "Ludmila", "Gaļina", "Valentīna", "Oksana", "Darja", "Aleksandra",
];

/// Family names as (male form, female form).
#[rustfmt::skip]
pub(super) const FAMILY_LV: &[(&str, &str)] = &[
    ("Bērziņš", "Bērziņa"), ("Kalniņš", "Kalniņa"), ("Ozoliņš", "Ozoliņa"), ("Jansons", "Jansone"),
    ("Ozols", "Ozola"), ("Liepiņš", "Liepiņa"), ("Krūmiņš", "Krūmiņa"), ("Balodis", "Baloda"),
    ("Eglītis", "Eglīte"), ("Zariņš", "Zariņa"), ("Pētersons", "Pētersone"), ("Vītols", "Vītola"),
    ("Kļaviņš", "Kļaviņa"), ("Kārkliņš", "Kārkliņa"), ("Lācis", "Lāce"), ("Grīnbergs", "Grīnberga"),
    ("Siliņš", "Siliņa"), ("Strazds", "Strazda"), ("Zvirbulis", "Zvirbule"), ("Vilks", "Vilka"),
    ("Rozenbergs", "Rozenberga"), ("Priede", "Priede"), ("Sproģis", "Sproģe"), ("Lapiņš", "Lapiņa"),
    ("Skujiņš", "Skujiņa"), ("Mednis", "Medne"), ("Kalns", "Kalna"), ("Zālītis", "Zālīte"),
    ("Rudzītis", "Rudzīte"), ("Freimanis", "Freimane"), ("Apinis", "Apine"), ("Kalējs", "Kalēja"),
    ("Auziņš", "Auziņa"), ("Cīrulis", "Cīrule"), ("Šmits", "Šmite"),
];

#[rustfmt::skip]
pub(super) const FAMILY_SLAVIC: &[(&str, &str)] = &[
    ("Ivanovs", "Ivanova"), ("Kuzņecovs", "Kuzņecova"), ("Petrovs", "Petrova"),
    ("Smirnovs", "Smirnova"), ("Vasiļjevs", "Vasiļjeva"), ("Popovs", "Popova"),
    ("Sokolovs", "Sokolova"), ("Volkovs", "Volkova"), ("Fjodorovs", "Fjodorova"),
    ("Morozovs", "Morozova"), ("Novikovs", "Novikova"), ("Pavlovs", "Pavlova"),
    ("Jakovļevs", "Jakovļeva"), ("Bogdanovs", "Bogdanova"), ("Kozlovs", "Kozlova"),
    ("Orlovs", "Orlova"), ("Jankovskis", "Jankovska"), ("Kovaļevskis", "Kovaļevska"),
];

#[rustfmt::skip]
pub(super) const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("inbox.lv", 35), ("gmail.com", 40), ("apollo.lv", 6), ("outlook.com", 10), ("tvnet.lv", 4),
    ("yahoo.com", 5),
];

pub(super) const CITIZENSHIP_LV: &[(Option<&str>, u32)] = &[
    (Some("LVA"), 9_650),
    (Some("LTU"), 80),
    (Some("EST"), 30),
    (Some("DEU"), 40),
    (Some("POL"), 30),
    (Some("UKR"), 60),
    (Some("XXA"), 60),
    (None, 50),
];

pub(super) const CITIZENSHIP_SLAVIC: &[(Option<&str>, u32)] = &[
    (Some("LVA"), 6_000),
    (Some("XXA"), 1_900),
    (Some("RUS"), 1_000),
    (Some("UKR"), 600),
    (Some("BLR"), 300),
    (Some("POL"), 50),
    (Some("LTU"), 50),
    (None, 100),
];

/// Births per year by period (relative weights), a rough Latvian age pyramid.
pub(super) const BIRTH_PERIODS: &[(i32, i32, u64)] = &[
    (1930, 1939, 2),
    (1940, 1949, 5),
    (1950, 1959, 10),
    (1960, 1969, 13),
    (1970, 1979, 13),
    (1980, 1989, 14),
    (1990, 1999, 11),
    (2000, 2009, 9),
    (2010, 2019, 12),
    (2020, 2025, 9),
];

#[rustfmt::skip]
pub(super) const LEGAL_FORMS: &[(&str, u32)] = &[
    ("SIA", 700), ("AS", 30), ("IK", 70), ("ZS", 60), ("Biedrība", 110), ("Nodibinājums", 30),
];

#[rustfmt::skip]
pub(super) const STATUSES: &[(&str, u32)] = &[
    ("active", 80), ("liquidated", 14), ("in_insolvency", 3), ("reorganised", 3),
];

/// NACE Rev.2 classes with rough weights for commercial companies.
#[rustfmt::skip]
pub(super) const NACE: &[(&str, u32)] = &[
    ("01.11", 3), ("01.41", 2), ("02.20", 4), ("10.71", 2), ("16.10", 3), ("25.11", 2),
    ("31.09", 2), ("41.20", 9), ("42.11", 2), ("43.21", 4), ("45.20", 5), ("46.90", 8),
    ("47.11", 7), ("47.91", 5), ("49.41", 7), ("52.29", 3), ("55.10", 3), ("56.10", 5),
    ("62.01", 8), ("62.02", 4), ("68.20", 9), ("68.32", 4), ("69.20", 5), ("70.22", 7),
    ("71.11", 2), ("73.11", 3), ("81.21", 2), ("85.59", 3), ("86.23", 2), ("96.02", 3),
];

pub(super) const NACE_FARM: &[(&str, u32)] =
    &[("01.11", 5), ("01.41", 3), ("01.50", 3), ("02.20", 1)];
pub(super) const NACE_ASSOCIATION: &[(&str, u32)] = &[("94.99", 8), ("93.12", 3), ("85.59", 1)];
pub(super) const NACE_FOUNDATION: &[(&str, u32)] = &[("88.99", 4), ("94.99", 3), ("85.59", 1)];

#[rustfmt::skip]
pub(super) const NAME_PLACES: &[&str] = &[
    "Baltijas", "Ziemeļu", "Rīgas", "Kurzemes", "Vidzemes", "Latgales", "Zemgales", "Daugavas",
    "Saules", "Meža", "Jūras", "Dienvidu", "Austrumu", "Rietumu", "Gaujas", "Ventas", "Zelta",
    "Dzintara", "Sudraba", "Ozola", "Liepu", "Priežu", "Vecrīgas", "Kalnu",
];

#[rustfmt::skip]
pub(super) const NAME_TRADES: &[&str] = &[
    "Koks", "Enerģija", "Būve", "Tehnoloģijas", "Loģistika", "Pārtika", "Maiznīca", "Aptieka",
    "Transports", "Serviss", "Nami", "Dārzi", "Konsultācijas", "Grāmatvedība", "Metāls", "Stikls",
    "Piens", "Tirdzniecība", "Projekti", "Dizains", "Auto", "Celtnieks", "Investīcijas", "Mēbeles",
    "Logi", "Apsardze",
];

#[rustfmt::skip]
pub(super) const NAME_BRANDS: &[&str] = &[
    "Nordlat", "Baltika Plus", "Dzintarkrasts", "Lattehno", "Agrolats", "Mežvidi", "Saulrīts",
    "Ziedkalne", "Jaunzeme", "Alfa Serviss", "Vecsaimnieki", "Lauku Labumi",
];

#[rustfmt::skip]
pub(super) const NAME_ASSOCIATIONS: &[&str] = &[
    "Sporta klubs", "Kultūras biedrība", "Attīstības centrs", "Mednieku klubs", "Vecāku biedrība",
    "Senioru apvienība", "Uzņēmēju biedrība",
];

#[rustfmt::skip]
pub(super) const NAME_FOUNDATIONS: &[&str] = &[
    "Attīstības fonds", "Kultūras fonds", "Izglītības fonds", "Labdarības fonds",
];

#[rustfmt::skip]
pub(super) const PROPERTY_TYPES: &[(&str, u32)] = &[
    ("apartment", 38), ("land", 27), ("land_with_building", 25), ("building", 10),
];
