//! Synthetic but realistic Latvian registers for demos, tests and benchmarks.
//!
//! Four datasets are generated as Arrow record batches: the population register
//! (`persons`, PMLP), the enterprise register (`companies`, UR), the address register
//! (`addresses`, VZD) and the real-estate cadastre (`real_estate`, VZD). Their sizes scale
//! with the number of persons, their foreign keys are consistent (declared and legal
//! addresses, property addresses and owners all exist) and the data are a pure function of
//! [`DemoConfig`]: the same persons count and seed always give byte-identical batches.
//!
//! The generator uses its own small PRNG (SplitMix64) and only exact floating-point
//! arithmetic, so the output does not change with the version of a random-number crate or
//! with the platform's maths library.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::definition::{Attribute, DatasetDefinition};
use crate::error::{Error, Result};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 20_261_127;

/// Most rows in one generated record batch.
pub const MAX_BATCH_ROWS: usize = 65_536;

/// How much demo data to generate, and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    /// Number of persons; the other registers scale with it.
    pub persons: usize,
    /// PRNG seed: the same seed and size always give the same data.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            persons: 200_000,
            seed: DEFAULT_SEED,
        }
    }
}

/// One generated register: its definition and its rows.
#[derive(Debug, Clone)]
pub struct DemoDataset {
    /// The validated dataset definition.
    pub definition: DatasetDefinition,
    /// The rows, in batches of at most [`MAX_BATCH_ROWS`] rows.
    pub batches: Vec<RecordBatch>,
}

// ---------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and stable forever (unlike a crate's "standard" generator).
struct Rng(u64);

impl Rng {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

    /// An independent stream per register, so one register's size never shifts another's data.
    fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    fn digit(&mut self) -> u8 {
        self.below(10) as u8
    }
}

/// A weighted choice over indices, by cumulative weights.
struct Weights {
    cumulative: Vec<u64>,
}

impl Weights {
    fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cumulative }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty weights");
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Weighted pick from a small static table of `(value, weight)`.
fn pick_weighted<T: Copy>(rng: &mut Rng, table: &[(T, u32)]) -> T {
    let total: u64 = table.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut x = rng.below(total);
    for &(v, w) in table {
        if x < u64::from(w) {
            return v;
        }
        x -= u64::from(w);
    }
    table[table.len() - 1].0
}

// ---------------------------------------------------------------------------------------
// Calendar (days since 1970-01-01, proleptic Gregorian)
// ---------------------------------------------------------------------------------------

const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const LAST_DAY: i32 = days_from_civil(2025, 12, 31);

fn random_day(rng: &mut Rng, from: i32, to: i32) -> i32 {
    rng.range(i64::from(from), i64::from(to)) as i32
}

// ---------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------

/// A municipality of the 2021 administrative-territorial reform.
struct Municipality {
    name: &'static str,
    /// Population in hundreds (2023, rounded): the weight of the municipality.
    population: u32,
    lat: f64,
    lon: f64,
    /// A state city (`true`) or a novads.
    city: bool,
    /// Postcode range `LV-lo` ..= `LV-hi`.
    post: (u16, u16),
    /// A state city: its cadastral territory code; a novads: the two-digit former district
    /// code, the first two digits of its territories' codes.
    cadastre: u16,
    /// The novads' main town.
    town: &'static str,
    /// Genitive stems of some of its parishes (`pagasti`).
    parishes: &'static [&'static str],
}

const fn city(
    name: &'static str,
    population: u32,
    lat: f64,
    lon: f64,
    post: (u16, u16),
    cadastre: u16,
) -> Municipality {
    Municipality {
        name,
        population,
        lat,
        lon,
        city: true,
        post,
        cadastre,
        town: name,
        parishes: &[],
    }
}

#[allow(clippy::too_many_arguments)]
const fn novads(
    name: &'static str,
    population: u32,
    lat: f64,
    lon: f64,
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
        city: false,
        post,
        cadastre,
        town,
        parishes,
    }
}

#[rustfmt::skip]
const MUNI: [Municipality; 43] = [
    city("Rīga", 6050, 56.9496, 24.1052, (1001, 1084), 100),
    city("Daugavpils", 790, 55.8750, 26.5356, (5401, 5417), 500),
    city("Jelgava", 550, 56.6511, 23.7214, (3001, 3008), 900),
    city("Jūrmala", 500, 56.9680, 23.7704, (2008, 2016), 1300),
    city("Liepāja", 670, 56.5047, 21.0108, (3401, 3417), 1700),
    city("Rēzekne", 270, 56.5099, 27.3332, (4601, 4604), 2100),
    city("Ventspils", 330, 57.3894, 21.5606, (3601, 3602), 2700),
    novads("Aizkraukles novads", 310, 56.6048, 25.2551, (5101, 5140), 32, "Aizkraukle", &["Aizkraukles", "Kokneses", "Skrīveru"]),
    novads("Alūksnes novads", 140, 57.4226, 27.0466, (4301, 4350), 36, "Alūksne", &["Jaunalūksnes", "Mārkalnes", "Annas"]),
    novads("Augšdaugavas novads", 240, 55.9500, 26.7000, (5418, 5475), 44, "Ilūkste", &["Naujenes", "Kalkūnes", "Salienas"]),
    novads("Ādažu novads", 210, 57.0749, 24.3237, (2161, 2165), 80, "Ādaži", &["Carnikavas", "Ādažu"]),
    novads("Balvu novads", 180, 57.1313, 27.2656, (4501, 4595), 38, "Balvi", &["Bērzpils", "Kubulu", "Vīksnas"]),
    novads("Bauskas novads", 420, 56.4079, 24.1939, (3901, 3945), 40, "Bauska", &["Codes", "Īslīces", "Vecumnieku"]),
    novads("Cēsu novads", 400, 57.3119, 25.2710, (4101, 4150), 42, "Cēsis", &["Vaives", "Priekuļu", "Liepas"]),
    novads("Dienvidkurzemes novads", 340, 56.4500, 21.4000, (3430, 3490), 64, "Grobiņa", &["Nīcas", "Rucavas", "Vaiņodes"]),
    novads("Dobeles novads", 280, 56.6258, 23.2788, (3701, 3745), 46, "Dobele", &["Auru", "Bērzes", "Tērvetes"]),
    novads("Gulbenes novads", 190, 57.1749, 26.7527, (4401, 4430), 50, "Gulbene", &["Stradu", "Litenes", "Lejasciema"]),
    novads("Jelgavas novads", 310, 56.5800, 23.5500, (3009, 3050), 54, "Kalnciems", &["Ozolnieku", "Svētes", "Elejas"]),
    novads("Jēkabpils novads", 420, 56.4990, 25.8574, (5201, 5240), 56, "Jēkabpils", &["Rubenes", "Salas", "Zasas"]),
    novads("Krāslavas novads", 200, 55.8951, 27.1680, (5601, 5670), 60, "Krāslava", &["Kalniešu", "Indras", "Izvaltas"]),
    novads("Kuldīgas novads", 280, 56.9677, 21.9680, (3301, 3330), 62, "Kuldīga", &["Padures", "Rumbas", "Rudbāržu"]),
    novads("Ķekavas novads", 300, 56.8283, 24.2303, (2123, 2127), 80, "Ķekava", &["Daugmales", "Ķekavas"]),
    novads("Limbažu novads", 290, 57.5133, 24.7130, (4001, 4040), 66, "Limbaži", &["Katvaru", "Skultes", "Vidrižu"]),
    novads("Līvānu novads", 100, 56.3539, 26.1759, (5316, 5335), 76, "Līvāni", &["Rožupes", "Turku", "Jersikas"]),
    novads("Ludzas novads", 220, 56.5461, 27.7192, (5701, 5750), 68, "Ludza", &["Istras", "Pildas", "Cirmas"]),
    novads("Madonas novads", 310, 56.8534, 26.2170, (4801, 4837), 70, "Madona", &["Lazdonas", "Praulienas", "Ļaudonas"]),
    novads("Mārupes novads", 340, 56.9060, 23.9900, (2166, 2169), 80, "Mārupe", &["Babītes", "Salas", "Mārupes"]),
    novads("Ogres novads", 560, 56.8162, 24.6140, (5001, 5060), 74, "Ogre", &["Ogresgala", "Taurupes", "Suntažu"]),
    novads("Olaines novads", 200, 56.7852, 23.9382, (2110, 2114), 80, "Olaine", &["Olaines"]),
    novads("Preiļu novads", 170, 56.2942, 26.7246, (5301, 5315), 76, "Preiļi", &["Aizkalnes", "Pelēču", "Riebiņu"]),
    novads("Rēzeknes novads", 270, 56.4200, 27.3000, (4605, 4650), 78, "Viļāni", &["Maltas", "Griškānu", "Nautrēnu"]),
    novads("Ropažu novads", 320, 56.9700, 24.5500, (2128, 2140), 80, "Vangaži", &["Ropažu", "Stopiņu", "Garkalnes"]),
    novads("Salaspils novads", 240, 56.8614, 24.3497, (2115, 2122), 80, "Salaspils", &["Salaspils"]),
    novads("Saldus novads", 280, 56.6637, 22.4881, (3801, 3862), 84, "Saldus", &["Zvārdes", "Novadnieku", "Lutriņu"]),
    novads("Saulkrastu novads", 65, 57.2640, 24.4144, (2160, 2160), 80, "Saulkrasti", &["Sējas"]),
    novads("Siguldas novads", 310, 57.1537, 24.8533, (2150, 2159), 80, "Sigulda", &["Allažu", "Mores", "Inčukalna"]),
    novads("Smiltenes novads", 190, 57.4244, 25.9016, (4729, 4750), 94, "Smiltene", &["Blomes", "Launkalnes", "Palsmanes"]),
    novads("Talsu novads", 380, 57.2446, 22.5889, (3201, 3295), 88, "Talsi", &["Laucienes", "Ārlavas", "Strazdes"]),
    novads("Tukuma novads", 420, 56.9671, 23.1554, (3101, 3150), 90, "Tukums", &["Slampes", "Irlavas", "Zentenes"]),
    novads("Valkas novads", 85, 57.7752, 26.0174, (4701, 4728), 94, "Valka", &["Ērģemes", "Kārķu", "Vijciema"]),
    novads("Valmieras novads", 520, 57.5385, 25.4264, (4201, 4240), 96, "Valmiera", &["Kocēnu", "Brenguļu", "Trikātas"]),
    novads("Varakļānu novads", 30, 56.6088, 26.7546, (4838, 4839), 70, "Varakļāni", &["Murmastienes", "Varakļānu"]),
    novads("Ventspils novads", 110, 57.2500, 21.8500, (3603, 3630), 98, "Piltene", &["Ances", "Užavas", "Vārves"]),
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
const RIGA: usize = 0;

#[rustfmt::skip]
const RIGA_STREETS: &[&str] = &[
    "Brīvības iela", "Krišjāņa Barona iela", "Elizabetes iela", "Tērbatas iela",
    "Aleksandra Čaka iela", "Krišjāņa Valdemāra iela", "Gertrūdes iela", "Lāčplēša iela",
    "Maskavas iela", "Dzelzavas iela", "Brīvības gatve", "Vienības gatve", "Kārļa Ulmaņa gatve",
    "Ropažu iela", "Augusta Deglava iela", "Imantas iela", "Anniņmuižas bulvāris",
    "Kurzemes prospekts", "Lielvārdes iela", "Stirnu iela", "Ūnijas iela", "Zolitūdes iela",
    "Slokas iela", "Kalnciema iela", "Tallinas iela", "Miera iela", "Avotu iela", "Bruņinieku iela",
    "Mārupes iela", "Ulbrokas iela",
];

#[rustfmt::skip]
const TOWN_STREETS: &[&str] = &[
    "Brīvības iela", "Rīgas iela", "Skolas iela", "Dzirnavu iela", "Lielā iela", "Pils iela",
    "Baznīcas iela", "Dārza iela", "Meža iela", "Ezera iela", "Parka iela", "Stacijas iela",
    "Upes iela", "Liepu iela", "Bērzu iela", "Priežu iela", "Ozolu iela", "Saules iela",
    "Pasta iela", "Tirgus iela", "Raiņa iela", "Kalna iela", "Avotu iela", "Celtnieku iela",
    "Jaunā iela", "Lauku iela", "Strēlnieku iela", "Zemnieku iela", "Ābeļu iela", "Smilšu iela",
];

#[rustfmt::skip]
const HOMESTEADS: &[&str] = &[
    "Ozoli", "Kalnieši", "Liepas", "Bērzi", "Priedes", "Ābeles", "Lejnieki", "Jaunzemji",
    "Vecsētas", "Dzērves", "Egles", "Rozes", "Pīlādži", "Mežmalas", "Kārkli", "Avoti", "Lazdas",
    "Ievas", "Saulieši", "Upeslejas", "Silmaļi", "Dārziņi", "Straumes", "Vītoli",
];

#[rustfmt::skip]
const MALE_LV: &[&str] = &[
    "Jānis", "Andris", "Mārtiņš", "Kristaps", "Edgars", "Roberts", "Artūrs", "Dāvis", "Pēteris",
    "Ivars", "Gatis", "Raivis", "Oskars", "Reinis", "Toms", "Juris", "Aivars", "Guntis", "Māris",
    "Uldis", "Valdis", "Kārlis", "Rihards", "Ēriks", "Normunds", "Dainis", "Armands", "Gints",
    "Rolands", "Krišjānis", "Emīls", "Markuss", "Ralfs", "Gustavs", "Aleksandrs", "Edvards",
];

#[rustfmt::skip]
const MALE_SLAVIC: &[&str] = &[
    "Aleksandrs", "Sergejs", "Dmitrijs", "Vladimirs", "Andrejs", "Igors", "Nikolajs", "Jurijs",
    "Viktors", "Olegs", "Maksims", "Deniss", "Artjoms", "Vadims", "Mihails", "Aleksejs",
];

#[rustfmt::skip]
const FEMALE_LV: &[&str] = &[
    "Anna", "Līga", "Ilze", "Kristīne", "Inese", "Laura", "Elīza", "Marta", "Sanita", "Dace",
    "Zane", "Agnese", "Baiba", "Ieva", "Evija", "Linda", "Santa", "Madara", "Sabīne", "Alise",
    "Paula", "Emīlija", "Sofija", "Aija", "Inga", "Gunta", "Rasma", "Vija", "Daina", "Māra",
    "Jolanta", "Signe", "Kristīna", "Everita",
];

#[rustfmt::skip]
const FEMALE_SLAVIC: &[&str] = &[
    "Jeļena", "Natālija", "Olga", "Tatjana", "Irina", "Svetlana", "Marina", "Jūlija", "Anastasija",
    "Viktorija", "Ludmila", "Gaļina", "Valentīna", "Oksana", "Darja", "Aleksandra",
];

/// Family names as (male form, female form).
#[rustfmt::skip]
const FAMILY_LV: &[(&str, &str)] = &[
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
const FAMILY_SLAVIC: &[(&str, &str)] = &[
    ("Ivanovs", "Ivanova"), ("Kuzņecovs", "Kuzņecova"), ("Petrovs", "Petrova"),
    ("Smirnovs", "Smirnova"), ("Vasiļjevs", "Vasiļjeva"), ("Popovs", "Popova"),
    ("Sokolovs", "Sokolova"), ("Volkovs", "Volkova"), ("Fjodorovs", "Fjodorova"),
    ("Morozovs", "Morozova"), ("Novikovs", "Novikova"), ("Pavlovs", "Pavlova"),
    ("Jakovļevs", "Jakovļeva"), ("Bogdanovs", "Bogdanova"), ("Kozlovs", "Kozlova"),
    ("Orlovs", "Orlova"), ("Jankovskis", "Jankovska"), ("Kovaļevskis", "Kovaļevska"),
];

#[rustfmt::skip]
const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("inbox.lv", 35), ("gmail.com", 40), ("apollo.lv", 6), ("outlook.com", 10), ("tvnet.lv", 4),
    ("yahoo.com", 5),
];

const CITIZENSHIP_LV: &[(Option<&str>, u32)] = &[
    (Some("LVA"), 9_650),
    (Some("LTU"), 80),
    (Some("EST"), 30),
    (Some("DEU"), 40),
    (Some("POL"), 30),
    (Some("UKR"), 60),
    (Some("XXA"), 60),
    (None, 50),
];

const CITIZENSHIP_SLAVIC: &[(Option<&str>, u32)] = &[
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
const BIRTH_PERIODS: &[(i32, i32, u64)] = &[
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
const LEGAL_FORMS: &[(&str, u32)] = &[
    ("SIA", 700), ("AS", 30), ("IK", 70), ("ZS", 60), ("Biedrība", 110), ("Nodibinājums", 30),
];

#[rustfmt::skip]
const STATUSES: &[(&str, u32)] = &[
    ("active", 80), ("liquidated", 14), ("in_insolvency", 3), ("reorganised", 3),
];

/// NACE Rev.2 classes with rough weights for commercial companies.
#[rustfmt::skip]
const NACE: &[(&str, u32)] = &[
    ("01.11", 3), ("01.41", 2), ("02.20", 4), ("10.71", 2), ("16.10", 3), ("25.11", 2),
    ("31.09", 2), ("41.20", 9), ("42.11", 2), ("43.21", 4), ("45.20", 5), ("46.90", 8),
    ("47.11", 7), ("47.91", 5), ("49.41", 7), ("52.29", 3), ("55.10", 3), ("56.10", 5),
    ("62.01", 8), ("62.02", 4), ("68.20", 9), ("68.32", 4), ("69.20", 5), ("70.22", 7),
    ("71.11", 2), ("73.11", 3), ("81.21", 2), ("85.59", 3), ("86.23", 2), ("96.02", 3),
];

const NACE_FARM: &[(&str, u32)] = &[("01.11", 5), ("01.41", 3), ("01.50", 3), ("02.20", 1)];
const NACE_ASSOCIATION: &[(&str, u32)] = &[("94.99", 8), ("93.12", 3), ("85.59", 1)];
const NACE_FOUNDATION: &[(&str, u32)] = &[("88.99", 4), ("94.99", 3), ("85.59", 1)];

#[rustfmt::skip]
const NAME_PLACES: &[&str] = &[
    "Baltijas", "Ziemeļu", "Rīgas", "Kurzemes", "Vidzemes", "Latgales", "Zemgales", "Daugavas",
    "Saules", "Meža", "Jūras", "Dienvidu", "Austrumu", "Rietumu", "Gaujas", "Ventas", "Zelta",
    "Dzintara", "Sudraba", "Ozola", "Liepu", "Priežu", "Vecrīgas", "Kalnu",
];

#[rustfmt::skip]
const NAME_TRADES: &[&str] = &[
    "Koks", "Enerģija", "Būve", "Tehnoloģijas", "Loģistika", "Pārtika", "Maiznīca", "Aptieka",
    "Transports", "Serviss", "Nami", "Dārzi", "Konsultācijas", "Grāmatvedība", "Metāls", "Stikls",
    "Piens", "Tirdzniecība", "Projekti", "Dizains", "Auto", "Celtnieks", "Investīcijas", "Mēbeles",
    "Logi", "Apsardze",
];

#[rustfmt::skip]
const NAME_BRANDS: &[&str] = &[
    "Nordlat", "Baltika Plus", "Dzintarkrasts", "Lattehno", "Agrolats", "Mežvidi", "Saulrīts",
    "Ziedkalne", "Jaunzeme", "Alfa Serviss", "Vecsaimnieki", "Lauku Labumi",
];

#[rustfmt::skip]
const NAME_ASSOCIATIONS: &[&str] = &[
    "Sporta klubs", "Kultūras biedrība", "Attīstības centrs", "Mednieku klubs", "Vecāku biedrība",
    "Senioru apvienība", "Uzņēmēju biedrība",
];

#[rustfmt::skip]
const NAME_FOUNDATIONS: &[&str] = &[
    "Attīstības fonds", "Kultūras fonds", "Izglītības fonds", "Labdarības fonds",
];

#[rustfmt::skip]
const PROPERTY_TYPES: &[(&str, u32)] = &[
    ("apartment", 38), ("land", 27), ("land_with_building", 25), ("building", 10),
];

// ---------------------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------------------

fn persons_definition() -> DatasetDefinition {
    let p = |a: Attribute| a.personal("personal_code");
    DatasetDefinition {
        name: "persons".into(),
        owner: "PMLP".into(),
        description: "Population register: natural persons and their declared address".into(),
        primary_key: vec!["personal_code".into()],
        attributes: vec![
            p(Attribute::new(
                "personal_code",
                DataType::Utf8,
                "Latvian personal code, DDMMYY-CNNNN or (issued since 2017) 32NNNN-NNNNN",
            )
            .required()),
            p(Attribute::new("given_name", DataType::Utf8, "Given name").required()),
            p(Attribute::new("family_name", DataType::Utf8, "Family name").required()),
            p(Attribute::new("birth_date", DataType::Date32, "Date of birth").required()),
            p(Attribute::new("sex", DataType::Utf8, "Sex: M or F").required()),
            p(Attribute::new(
                "declared_address_code",
                DataType::Int64,
                "Address register code of the declared place of residence",
            )),
            p(Attribute::new(
                "municipality",
                DataType::Utf8,
                "Municipality of the declared place of residence",
            )
            .required()),
            p(Attribute::new(
                "citizenship",
                DataType::Utf8,
                "Citizenship, ISO 3166-1 alpha-3 (XXA: stateless or non-citizen); null if unknown",
            )),
            p(Attribute::new(
                "phone",
                DataType::Utf8,
                "Mobile phone number",
            )),
            p(Attribute::new("email", DataType::Utf8, "E-mail address")),
        ],
    }
}

fn companies_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "companies".into(),
        owner: "UR".into(),
        description: "Enterprise register: companies, associations and foundations".into(),
        primary_key: vec!["registration_number".into()],
        attributes: vec![
            Attribute::new(
                "registration_number",
                DataType::Utf8,
                "11-digit registration number",
            )
            .required(),
            Attribute::new(
                "name",
                DataType::Utf8,
                "Registered name with its legal form",
            )
            .required(),
            Attribute::new(
                "legal_form",
                DataType::Utf8,
                "Legal form: SIA, AS, IK, ZS, Biedrība or Nodibinājums",
            )
            .required(),
            Attribute::new(
                "registration_date",
                DataType::Date32,
                "Date of registration",
            )
            .required(),
            Attribute::new(
                "status",
                DataType::Utf8,
                "Status: active, liquidated, in_insolvency or reorganised",
            )
            .required(),
            Attribute::new(
                "legal_address_code",
                DataType::Int64,
                "Address register code of the legal address",
            )
            .required(),
            Attribute::new(
                "nace_code",
                DataType::Utf8,
                "Main activity, NACE Rev.2 class",
            )
            .required(),
            Attribute::new(
                "share_capital",
                DataType::Decimal128(18, 2),
                "Registered share capital in EUR; null for forms without capital",
            ),
            Attribute::new("employees", DataType::Int32, "Number of employees").required(),
        ],
    }
}

fn addresses_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "addresses".into(),
        owner: "VZD".into(),
        description: "Address register: addressable buildings and apartments".into(),
        primary_key: vec!["address_code".into()],
        attributes: vec![
            Attribute::new(
                "address_code",
                DataType::Int64,
                "9-digit address register code",
            )
            .required(),
            Attribute::new(
                "full_address",
                DataType::Utf8,
                "Full address as written on mail",
            )
            .required(),
            Attribute::new(
                "street",
                DataType::Utf8,
                "Street; null for rural named houses",
            ),
            Attribute::new(
                "house_number",
                DataType::Utf8,
                "House number, or the house name of a rural address",
            )
            .required(),
            Attribute::new("apartment", DataType::Utf8, "Apartment number"),
            Attribute::new("municipality", DataType::Utf8, "Municipality (2021 reform)").required(),
            Attribute::new("postcode", DataType::Utf8, "Postcode, LV-NNNN").required(),
            Attribute::new("latitude", DataType::Float64, "Latitude, WGS 84").required(),
            Attribute::new("longitude", DataType::Float64, "Longitude, WGS 84").required(),
        ],
    }
}

fn real_estate_definition() -> DatasetDefinition {
    DatasetDefinition {
        name: "real_estate".into(),
        owner: "VZD".into(),
        description: "Real-estate cadastre: properties, their owners and cadastral values".into(),
        primary_key: vec!["cadastre_number".into()],
        attributes: vec![
            Attribute::new(
                "cadastre_number",
                DataType::Utf8,
                "11-digit cadastre number; the first 4 digits are the cadastral territory",
            )
            .required(),
            Attribute::new(
                "property_type",
                DataType::Utf8,
                "Property type: land, building, apartment or land_with_building",
            )
            .required(),
            Attribute::new("area_m2", DataType::Float64, "Area in square metres").required(),
            Attribute::new(
                "address_code",
                DataType::Int64,
                "Address register code, if addressed",
            ),
            Attribute::new(
                "owner_code",
                DataType::Utf8,
                "Owner: a personal code or a company registration number",
            )
            .required()
            .personal("owner_code"),
            Attribute::new(
                "owner_kind",
                DataType::Utf8,
                "Owner kind: person or company",
            )
            .required(),
            Attribute::new(
                "cadastral_value",
                DataType::Decimal128(18, 2),
                "Cadastral value in EUR",
            )
            .required(),
            Attribute::new(
                "registered_on",
                DataType::Date32,
                "Date the ownership was registered",
            )
            .required(),
        ],
    }
}

/// The four demo dataset definitions, validated, in the order persons, companies,
/// addresses, real_estate.
pub fn definitions() -> Vec<DatasetDefinition> {
    [
        persons_definition(),
        companies_definition(),
        addresses_definition(),
        real_estate_definition(),
    ]
    .into_iter()
    .map(|d| d.validated().expect("the demo definitions are valid"))
    .collect()
}

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

/// What later registers need to know about the addresses.
struct AddressIndex {
    codes: Vec<i64>,
    municipality: Vec<u8>,
    /// Indices of addresses with an apartment, and of those without.
    with_apartment: Vec<usize>,
    without_apartment: Vec<usize>,
}

impl AddressIndex {
    fn pick(&self, rng: &mut Rng, apartment: bool) -> usize {
        let list = if apartment {
            &self.with_apartment
        } else {
            &self.without_apartment
        };
        if list.is_empty() {
            rng.index(self.codes.len())
        } else {
            *rng.pick(list)
        }
    }
}

/// Personal codes, 12 ASCII bytes each, back to back, and birth days.
struct PersonIndex {
    codes: String,
    birth: Vec<i32>,
}

impl PersonIndex {
    fn code(&self, i: usize) -> &str {
        &self.codes[i * 12..i * 12 + 12]
    }
}

struct CompanyIndex {
    numbers: Vec<u64>,
    registered: Vec<i32>,
}

/// Appends rows to column builders and cuts a batch every [`MAX_BATCH_ROWS`] rows.
struct Batcher {
    schema: SchemaRef,
    rows: usize,
    batches: Vec<RecordBatch>,
}

impl Batcher {
    fn new(def: &DatasetDefinition) -> Self {
        Self {
            schema: def.arrow_schema(),
            rows: 0,
            batches: Vec::new(),
        }
    }

    /// Count a row; true when the batch is full and must be cut.
    fn row_done(&mut self) -> bool {
        self.rows += 1;
        self.rows == MAX_BATCH_ROWS
    }

    fn cut(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        self.batches
            .push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        self.rows = 0;
        Ok(())
    }
}

fn cap(rows: usize) -> usize {
    rows.min(MAX_BATCH_ROWS)
}

fn decimal_builder(rows: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(cap(rows)).with_data_type(DataType::Decimal128(18, 2))
}

/// Round to `1 / scale`, exactly reproducibly.
fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

fn to_cents(eur: f64) -> i128 {
    (eur * 100.0).round() as i128
}

/// Lower-case ASCII form of a Latvian name, for e-mail addresses.
fn push_ascii_lower(out: &mut String, s: &str) {
    for c in s.chars() {
        let f = match c {
            'ā' | 'Ā' => 'a',
            'č' | 'Č' => 'c',
            'ē' | 'Ē' => 'e',
            'ģ' | 'Ģ' => 'g',
            'ī' | 'Ī' => 'i',
            'ķ' | 'Ķ' => 'k',
            'ļ' | 'Ļ' => 'l',
            'ņ' | 'Ņ' => 'n',
            'š' | 'Š' => 's',
            'ū' | 'Ū' => 'u',
            'ž' | 'Ž' => 'z',
            other => other.to_ascii_lowercase(),
        };
        if f.is_ascii_alphanumeric() {
            out.push(f);
        }
    }
}

/// Weights of the personal-code check digit.
const CHECK_WEIGHTS: [u32; 10] = [1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check digit of a personal code's first ten digits, or `None` when the rule gives 10
/// (no valid code has those ten digits).
fn check_digit(digits: &[u8; 10]) -> Option<u8> {
    let sum: u32 = digits
        .iter()
        .zip(CHECK_WEIGHTS)
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    let c = (1101 - sum) % 11;
    (c < 10).then_some(c as u8)
}

/// Draw a unique personal code: old form from the birth date, or new form `32NNNN-NNNNN`.
fn draw_personal_code(
    rng: &mut Rng,
    birth: i32,
    new_form: bool,
    seen: &mut HashSet<u64>,
) -> [u8; 12] {
    let (y, m, d) = civil_from_days(birth);
    loop {
        let mut digits = [0u8; 10];
        if new_form {
            digits[0] = 3;
            digits[1] = 2;
            for x in &mut digits[2..] {
                *x = rng.digit();
            }
        } else {
            let yy = y.rem_euclid(100) as u32;
            digits[0] = (d / 10) as u8;
            digits[1] = (d % 10) as u8;
            digits[2] = (m / 10) as u8;
            digits[3] = (m % 10) as u8;
            digits[4] = (yy / 10) as u8;
            digits[5] = (yy % 10) as u8;
            digits[6] = (y / 100 - 18) as u8;
            for x in &mut digits[7..] {
                *x = rng.digit();
            }
        }
        let Some(check) = check_digit(&digits) else {
            continue;
        };
        let number =
            digits.iter().fold(0u64, |acc, &x| acc * 10 + u64::from(x)) * 10 + u64::from(check);
        if !seen.insert(number) {
            continue;
        }
        let mut code = [b'-'; 12];
        for (i, &x) in digits.iter().enumerate() {
            code[if i < 6 { i } else { i + 1 }] = b'0' + x;
        }
        code[11] = b'0' + check;
        return code;
    }
}

fn generate_addresses(
    n: usize,
    seed: u64,
    def: &DatasetDefinition,
) -> Result<(Vec<RecordBatch>, AddressIndex)> {
    let mut rng = Rng::new(seed, 1);
    let weights = Weights::new(MUNI.iter().map(|m| u64::from(m.population)));
    let mut batcher = Batcher::new(def);
    let c = cap(n);
    let mut code_b = Int64Builder::with_capacity(c);
    let mut full_b = StringBuilder::with_capacity(c, c * 40);
    let mut street_b = StringBuilder::with_capacity(c, c * 14);
    let mut house_b = StringBuilder::with_capacity(c, c * 4);
    let mut apt_b = StringBuilder::with_capacity(c, c * 2);
    let mut muni_b = StringBuilder::with_capacity(c, c * 10);
    let mut post_b = StringBuilder::with_capacity(c, c * 7);
    let mut lat_b = Float64Builder::with_capacity(c);
    let mut lon_b = Float64Builder::with_capacity(c);

    let mut index = AddressIndex {
        codes: Vec::with_capacity(n),
        municipality: Vec::with_capacity(n),
        with_apartment: Vec::new(),
        without_apartment: Vec::new(),
    };
    let mut full = String::with_capacity(96);
    let mut house = String::with_capacity(16);
    let mut apt = String::with_capacity(8);
    let mut post = String::with_capacity(8);
    let mut code: i64 = 100_000_000 + rng.below(1_000) as i64;

    for i in 0..n {
        code += 1 + rng.below(64) as i64;
        let mi = weights.pick(&mut rng);
        let m = &MUNI[mi];
        full.clear();
        house.clear();
        apt.clear();
        post.clear();
        let postcode = rng.range(i64::from(m.post.0), i64::from(m.post.1));
        write!(post, "LV-{postcode:04}").expect("write to String");

        // A town address (street, number, maybe an apartment) or a rural named house.
        let rural = !m.city && rng.chance(0.5);
        let street: Option<&str>;
        if rural {
            street = None;
            let home = *rng.pick(HOMESTEADS);
            let parish = *rng.pick(m.parishes);
            let stem = m.name.strip_suffix(" novads").unwrap_or(m.name);
            house.push_str(home);
            write!(full, "“{home}”, {parish} pag., {stem} nov., {post}").expect("write");
        } else {
            let s = if mi == RIGA && rng.chance(0.6) {
                *rng.pick(RIGA_STREETS)
            } else {
                *rng.pick(TOWN_STREETS)
            };
            street = Some(s);
            let u = rng.unit();
            let number = 1 + (u * u * 140.0) as u32;
            write!(house, "{number}").expect("write");
            if rng.chance(0.07) {
                house.push(if rng.chance(0.7) { 'A' } else { 'B' });
            } else if mi == RIGA && rng.chance(0.06) {
                write!(house, " k-{}", 1 + rng.below(5)).expect("write");
            }
            let apartment_share = match (mi == RIGA, m.city) {
                (true, _) => 0.72,
                (false, true) => 0.58,
                (false, false) => 0.35,
            };
            if rng.chance(apartment_share) {
                let u = rng.unit();
                write!(apt, "{}", 1 + (u * u * 120.0) as u32).expect("write");
            }
            write!(full, "{s} {house}").expect("write");
            if !apt.is_empty() {
                write!(full, " - {apt}").expect("write");
            }
            if m.city {
                write!(full, ", {}, {post}", m.name).expect("write");
            } else {
                let stem = m.name.strip_suffix(" novads").unwrap_or(m.name);
                write!(full, ", {}, {stem} nov., {post}", m.town).expect("write");
            }
        }

        // Near the centre: tighter in a city, wider in a novads.
        let (dlat, dlon) = if m.city { (0.035, 0.06) } else { (0.17, 0.30) };
        let lat = m.lat + dlat * (rng.unit() + rng.unit() - 1.0);
        let lon = m.lon + dlon * (rng.unit() + rng.unit() - 1.0);

        code_b.append_value(code);
        full_b.append_value(&full);
        street_b.append_option(street);
        house_b.append_value(&house);
        if apt.is_empty() {
            apt_b.append_null();
            index.without_apartment.push(i);
        } else {
            apt_b.append_value(&apt);
            index.with_apartment.push(i);
        }
        muni_b.append_value(m.name);
        post_b.append_value(&post);
        lat_b.append_value(round_to(lat.clamp(55.68, 58.08), 1e6));
        lon_b.append_value(round_to(lon.clamp(20.98, 28.23), 1e6));
        index.codes.push(code);
        index.municipality.push(mi as u8);

        if batcher.row_done() || i + 1 == n {
            batcher.cut(vec![
                Arc::new(code_b.finish()),
                Arc::new(full_b.finish()),
                Arc::new(street_b.finish()),
                Arc::new(house_b.finish()),
                Arc::new(apt_b.finish()),
                Arc::new(muni_b.finish()),
                Arc::new(post_b.finish()),
                Arc::new(lat_b.finish()),
                Arc::new(lon_b.finish()),
            ])?;
        }
    }
    Ok((batcher.batches, index))
}

fn generate_persons(
    n: usize,
    seed: u64,
    def: &DatasetDefinition,
    addresses: &AddressIndex,
) -> Result<(Vec<RecordBatch>, PersonIndex)> {
    let mut rng = Rng::new(seed, 2);
    let muni_weights = Weights::new(MUNI.iter().map(|m| u64::from(m.population)));
    let years: Vec<i32> = BIRTH_PERIODS.iter().flat_map(|&(a, b, _)| a..=b).collect();
    let year_weights = Weights::new(
        BIRTH_PERIODS
            .iter()
            .flat_map(|&(a, b, w)| (a..=b).map(move |_| w)),
    );
    let new_form_from = days_from_civil(2017, 7, 1);

    let mut batcher = Batcher::new(def);
    let c = cap(n);
    let mut code_b = StringBuilder::with_capacity(c, c * 12);
    let mut given_b = StringBuilder::with_capacity(c, c * 7);
    let mut family_b = StringBuilder::with_capacity(c, c * 9);
    let mut birth_b = Date32Builder::with_capacity(c);
    let mut sex_b = StringBuilder::with_capacity(c, c);
    let mut addr_b = Int64Builder::with_capacity(c);
    let mut muni_b = StringBuilder::with_capacity(c, c * 10);
    let mut cit_b = StringBuilder::with_capacity(c, c * 3);
    let mut phone_b = StringBuilder::with_capacity(c, c * 13);
    let mut email_b = StringBuilder::with_capacity(c, c * 24);

    let mut index = PersonIndex {
        codes: String::with_capacity(n * 12),
        birth: Vec::with_capacity(n),
    };
    let mut seen = HashSet::with_capacity(n);
    let mut phone = String::with_capacity(16);
    let mut email = String::with_capacity(48);

    for i in 0..n {
        let year = years[year_weights.pick(&mut rng)];
        let first = days_from_civil(year, 1, 1);
        let last = (days_from_civil(year + 1, 1, 1) - 1).min(LAST_DAY);
        let birth = random_day(&mut rng, first, last);
        let new_form = birth >= new_form_from || rng.chance(0.065);
        let code = draw_personal_code(&mut rng, birth, new_form, &mut seen);
        let code = std::str::from_utf8(&code).expect("personal codes are ASCII");
        index.codes.push_str(code);
        index.birth.push(birth);

        let female = rng.chance(0.53);
        let slavic = rng.chance(0.22);
        let given = match (female, slavic) {
            (false, false) => *rng.pick(MALE_LV),
            (false, true) => *rng.pick(MALE_SLAVIC),
            (true, false) => *rng.pick(FEMALE_LV),
            (true, true) => *rng.pick(FEMALE_SLAVIC),
        };
        let (male_family, female_family) = if slavic {
            *rng.pick(FAMILY_SLAVIC)
        } else {
            *rng.pick(FAMILY_LV)
        };
        let family = if female { female_family } else { male_family };

        let (address, municipality) = if addresses.codes.is_empty() || rng.chance(0.03) {
            (None, MUNI[muni_weights.pick(&mut rng)].name)
        } else {
            let a = rng.index(addresses.codes.len());
            (
                Some(addresses.codes[a]),
                MUNI[usize::from(addresses.municipality[a])].name,
            )
        };
        let citizenship = pick_weighted(
            &mut rng,
            if slavic {
                CITIZENSHIP_SLAVIC
            } else {
                CITIZENSHIP_LV
            },
        );

        let (birth_year, _, _) = civil_from_days(birth);
        phone.clear();
        let has_phone = birth_year <= 2015 && rng.chance(0.9);
        if has_phone {
            phone.push_str("+371 2");
            for _ in 0..7 {
                phone.push(char::from(b'0' + rng.digit()));
            }
        }
        email.clear();
        let has_email = birth_year <= 2011 && rng.chance(0.55);
        if has_email {
            match rng.below(4) {
                0 => {
                    push_ascii_lower(&mut email, given);
                    email.push('.');
                    push_ascii_lower(&mut email, family);
                }
                1 => {
                    push_ascii_lower(&mut email, given);
                    email.push('.');
                    push_ascii_lower(&mut email, family);
                    write!(email, "{:02}", birth_year.rem_euclid(100)).expect("write");
                }
                2 => {
                    let mut initial = [0u8; 4];
                    let g = given.chars().next().expect("non-empty name");
                    push_ascii_lower(&mut email, g.encode_utf8(&mut initial));
                    push_ascii_lower(&mut email, family);
                }
                _ => {
                    push_ascii_lower(&mut email, family);
                    email.push('.');
                    push_ascii_lower(&mut email, given);
                    write!(email, "{}", rng.below(100)).expect("write");
                }
            }
            email.push('@');
            email.push_str(pick_weighted(&mut rng, EMAIL_DOMAINS));
        }

        code_b.append_value(code);
        given_b.append_value(given);
        family_b.append_value(family);
        birth_b.append_value(birth);
        sex_b.append_value(if female { "F" } else { "M" });
        addr_b.append_option(address);
        muni_b.append_value(municipality);
        cit_b.append_option(citizenship);
        if has_phone {
            phone_b.append_value(&phone);
        } else {
            phone_b.append_null();
        }
        if has_email {
            email_b.append_value(&email);
        } else {
            email_b.append_null();
        }

        if batcher.row_done() || i + 1 == n {
            batcher.cut(vec![
                Arc::new(code_b.finish()),
                Arc::new(given_b.finish()),
                Arc::new(family_b.finish()),
                Arc::new(birth_b.finish()),
                Arc::new(sex_b.finish()),
                Arc::new(addr_b.finish()),
                Arc::new(muni_b.finish()),
                Arc::new(cit_b.finish()),
                Arc::new(phone_b.finish()),
                Arc::new(email_b.finish()),
            ])?;
        }
    }
    Ok((batcher.batches, index))
}

fn employees(rng: &mut Rng, form: &str) -> i32 {
    let (lo, hi) = match form {
        "IK" => (0, 3),
        "ZS" => (0, 12),
        "Biedrība" => (0, 5),
        "Nodibinājums" => (0, 25),
        "AS" => match rng.below(10) {
            0..=3 => (10, 249),
            4..=8 => (250, 1_500),
            _ => (1_500, 6_000),
        },
        _ => match rng.below(100) {
            0..=39 => (0, 1),
            40..=69 => (2, 9),
            70..=89 => (10, 49),
            90..=97 => (50, 249),
            _ => (250, 2_500),
        },
    };
    rng.range(lo, hi) as i32
}

fn share_capital(rng: &mut Rng, form: &str) -> Option<i128> {
    let eur = match form {
        "SIA" => match rng.below(10) {
            0..=2 => 2_800.0,
            3 => rng.range(1, 2_799) as f64,
            4..=7 => rng.range(2_800, 50_000) as f64,
            _ => {
                let u = rng.unit();
                50_000.0 + u * u * u * 5_000_000.0
            }
        },
        "AS" => {
            let u = rng.unit();
            35_000.0 + u * u * u * 50_000_000.0
        }
        _ => return None,
    };
    Some(to_cents(eur.round()))
}

fn generate_companies(
    n: usize,
    seed: u64,
    def: &DatasetDefinition,
    addresses: &AddressIndex,
) -> Result<(Vec<RecordBatch>, CompanyIndex)> {
    let mut rng = Rng::new(seed, 3);
    let first_day = days_from_civil(1991, 1, 1);
    let boom = days_from_civil(2004, 1, 1);

    let mut batcher = Batcher::new(def);
    let c = cap(n);
    let mut reg_b = StringBuilder::with_capacity(c, c * 11);
    let mut name_b = StringBuilder::with_capacity(c, c * 24);
    let mut form_b = StringBuilder::with_capacity(c, c * 4);
    let mut date_b = Date32Builder::with_capacity(c);
    let mut status_b = StringBuilder::with_capacity(c, c * 7);
    let mut addr_b = Int64Builder::with_capacity(c);
    let mut nace_b = StringBuilder::with_capacity(c, c * 5);
    let mut capital_b = decimal_builder(n);
    let mut emp_b = Int32Builder::with_capacity(c);

    let mut index = CompanyIndex {
        numbers: Vec::with_capacity(n),
        registered: Vec::with_capacity(n),
    };
    let mut seen = HashSet::with_capacity(n);
    let mut reg = String::with_capacity(12);
    let mut name = String::with_capacity(64);

    for i in 0..n {
        let form = pick_weighted(&mut rng, LEGAL_FORMS);
        let registered = if rng.chance(0.25) {
            random_day(&mut rng, first_day, boom - 1)
        } else {
            random_day(&mut rng, boom, LAST_DAY)
        };
        let (reg_year, _, _) = civil_from_days(registered);

        // 4 or 5, a block that depends on the form and the era, then six digits.
        let block: u64 = match form {
            "Biedrība" | "Nodibinājums" => 8,
            "IK" | "ZS" => 2,
            _ if reg_year >= 2018 => 203,
            _ if reg_year >= 2010 => 103,
            _ => 3,
        };
        let number = loop {
            let lead: u64 = if rng.chance(0.85) { 4 } else { 5 };
            let candidate = lead * 10_000_000_000 + block * 1_000_000 + rng.below(1_000_000);
            if seen.insert(candidate) {
                break candidate;
            }
        };
        reg.clear();
        write!(reg, "{number:011}").expect("write");

        name.clear();
        match form {
            "SIA" | "AS" | "IK" if rng.chance(0.2) => {
                write!(name, "{form} \"{}\"", rng.pick(NAME_BRANDS)).expect("write");
            }
            "ZS" => write!(name, "ZS \"{}\"", rng.pick(HOMESTEADS)).expect("write"),
            "Biedrība" => write!(
                name,
                "Biedrība \"{} {}\"",
                rng.pick(NAME_PLACES),
                rng.pick(NAME_ASSOCIATIONS)
            )
            .expect("write"),
            "Nodibinājums" => write!(
                name,
                "Nodibinājums \"{} {}\"",
                rng.pick(NAME_PLACES),
                rng.pick(NAME_FOUNDATIONS)
            )
            .expect("write"),
            _ => write!(
                name,
                "{form} \"{} {}\"",
                rng.pick(NAME_PLACES),
                rng.pick(NAME_TRADES)
            )
            .expect("write"),
        }

        let status = if registered > days_from_civil(2024, 1, 1) {
            "active"
        } else {
            pick_weighted(&mut rng, STATUSES)
        };
        let nace = pick_weighted(
            &mut rng,
            match form {
                "ZS" => NACE_FARM,
                "Biedrība" => NACE_ASSOCIATION,
                "Nodibinājums" => NACE_FOUNDATION,
                _ => NACE,
            },
        );
        // Companies cluster in Rīga more than people do.
        let mut a = addresses.pick(&mut rng, false);
        if usize::from(addresses.municipality[a]) != RIGA && rng.chance(0.3) {
            a = addresses.pick(&mut rng, false);
        }
        let staff = if status == "liquidated" {
            0
        } else {
            employees(&mut rng, form)
        };

        reg_b.append_value(&reg);
        name_b.append_value(&name);
        form_b.append_value(form);
        date_b.append_value(registered);
        status_b.append_value(status);
        addr_b.append_value(addresses.codes[a]);
        nace_b.append_value(nace);
        capital_b.append_option(share_capital(&mut rng, form));
        emp_b.append_value(staff);
        index.numbers.push(number);
        index.registered.push(registered);

        if batcher.row_done() || i + 1 == n {
            batcher.cut(vec![
                Arc::new(reg_b.finish()),
                Arc::new(name_b.finish()),
                Arc::new(form_b.finish()),
                Arc::new(date_b.finish()),
                Arc::new(status_b.finish()),
                Arc::new(addr_b.finish()),
                Arc::new(nace_b.finish()),
                Arc::new(capital_b.finish()),
                Arc::new(emp_b.finish()),
            ])?;
        }
    }
    Ok((batcher.batches, index))
}

fn generate_real_estate(
    n: usize,
    seed: u64,
    def: &DatasetDefinition,
    addresses: &AddressIndex,
    persons: &PersonIndex,
    companies: &CompanyIndex,
) -> Result<Vec<RecordBatch>> {
    let mut rng = Rng::new(seed, 4);
    let muni_weights = Weights::new(MUNI.iter().map(|m| u64::from(m.population)));
    let cadastre_start = days_from_civil(1993, 1, 1);

    let mut batcher = Batcher::new(def);
    let c = cap(n);
    let mut cad_b = StringBuilder::with_capacity(c, c * 11);
    let mut type_b = StringBuilder::with_capacity(c, c * 9);
    let mut area_b = Float64Builder::with_capacity(c);
    let mut addr_b = Int64Builder::with_capacity(c);
    let mut owner_b = StringBuilder::with_capacity(c, c * 12);
    let mut kind_b = StringBuilder::with_capacity(c, c * 7);
    let mut value_b = decimal_builder(n);
    let mut date_b = Date32Builder::with_capacity(c);

    let mut seen = HashSet::with_capacity(n);
    let mut cad = String::with_capacity(12);
    let mut company_code = String::with_capacity(12);

    for i in 0..n {
        let kind = pick_weighted(&mut rng, PROPERTY_TYPES);
        let addressed = match kind {
            "apartment" => true,
            "land" => rng.chance(0.88),
            _ => rng.chance(0.98),
        };
        let (address, mi) = if addressed && !addresses.codes.is_empty() {
            let a = addresses.pick(&mut rng, kind == "apartment");
            (
                Some(addresses.codes[a]),
                usize::from(addresses.municipality[a]),
            )
        } else {
            (None, muni_weights.pick(&mut rng))
        };
        let m = &MUNI[mi];

        let territory = if m.city {
            u64::from(m.cadastre)
        } else {
            u64::from(m.cadastre) * 100 + 1 + rng.below(60)
        };
        let number = loop {
            let candidate = territory * 10_000_000 + rng.below(10_000_000);
            if seen.insert(candidate) {
                break candidate;
            }
        };
        cad.clear();
        write!(cad, "{number:011}").expect("write");

        // Price level: Rīga, then Pierīga (former Rīga district), other cities, the rest.
        let level = if mi == RIGA {
            1.0
        } else if m.cadastre == 80 {
            0.65
        } else if m.city {
            0.5
        } else {
            0.3
        };
        let u = rng.unit();
        let v = 0.6 + 0.8 * rng.unit();
        let (area, value) = match kind {
            "apartment" => {
                let area = round_to(22.0 + u * u * 110.0 + 10.0 * rng.unit(), 10.0);
                (area, area * 900.0 * level * v)
            }
            "building" => {
                let area = round_to(15.0 + u * u * 700.0, 1.0);
                (area, area * 220.0 * level * v)
            }
            "land" if m.city || m.cadastre == 80 => {
                let area = round_to(300.0 + u * u * 4_000.0, 1.0);
                (area, area * 35.0 * level * v)
            }
            "land" => {
                let area = round_to(600.0 + u * u * u * 250_000.0, 1.0);
                (area, area * 0.3 * v)
            }
            _ => {
                let area = if m.city {
                    round_to(400.0 + u * u * 2_500.0, 1.0)
                } else {
                    round_to(1_500.0 + u * u * 60_000.0, 1.0)
                };
                let house = 70.0 + 230.0 * rng.unit();
                let land_rate = if m.city || m.cadastre == 80 {
                    35.0
                } else {
                    0.5
                };
                (area, (area * land_rate + house * 400.0) * level * v)
            }
        };

        // Owners: mostly persons; registration after the cadastre started, after the
        // company was founded, and for a person usually once of age.
        let person_owner = !persons.birth.is_empty() && rng.chance(0.75);
        let (owner, owner_kind, earliest) = if person_owner {
            let p = rng.index(persons.birth.len());
            let birth = persons.birth[p];
            let of_age = birth + 18 * 365 + 4;
            let earliest = if of_age <= LAST_DAY && rng.chance(0.97) {
                of_age.max(cadastre_start)
            } else {
                birth.max(cadastre_start)
            };
            (persons.code(p), "person", earliest)
        } else {
            let k = rng.index(companies.numbers.len());
            company_code.clear();
            write!(company_code, "{:011}", companies.numbers[k]).expect("write");
            (
                company_code.as_str(),
                "company",
                companies.registered[k].max(cadastre_start),
            )
        };
        let registered = random_day(&mut rng, earliest, LAST_DAY);

        cad_b.append_value(&cad);
        type_b.append_value(kind);
        area_b.append_value(area);
        addr_b.append_option(address);
        owner_b.append_value(owner);
        kind_b.append_value(owner_kind);
        value_b.append_value(to_cents(value.max(50.0)));
        date_b.append_value(registered);

        if batcher.row_done() || i + 1 == n {
            batcher.cut(vec![
                Arc::new(cad_b.finish()),
                Arc::new(type_b.finish()),
                Arc::new(area_b.finish()),
                Arc::new(addr_b.finish()),
                Arc::new(owner_b.finish()),
                Arc::new(kind_b.finish()),
                Arc::new(value_b.finish()),
                Arc::new(date_b.finish()),
            ])?;
        }
    }
    Ok(batcher.batches)
}

/// Row counts `(addresses, companies, real_estate)` for a number of persons.
fn sizes(persons: usize) -> (usize, usize, usize) {
    (
        (persons / 2).max(10),
        (persons / 10).max(5),
        (persons / 2).max(10),
    )
}

/// Generate the four registers, in the order persons, companies, addresses, real_estate.
///
/// The result is a pure function of `cfg`. Batches hold at most [`MAX_BATCH_ROWS`] rows;
/// a register with no rows has no batches.
pub fn generate(cfg: &DemoConfig) -> Result<Vec<DemoDataset>> {
    let mut defs = definitions().into_iter();
    let (Some(persons_def), Some(companies_def), Some(addresses_def), Some(real_estate_def)) =
        (defs.next(), defs.next(), defs.next(), defs.next())
    else {
        return Err(Error::Internal("demo definitions are incomplete".into()));
    };
    let (n_addresses, n_companies, n_real_estate) = sizes(cfg.persons);

    let (address_batches, addresses) = generate_addresses(n_addresses, cfg.seed, &addresses_def)?;
    let (company_batches, companies) =
        generate_companies(n_companies, cfg.seed, &companies_def, &addresses)?;
    let (person_batches, persons) =
        generate_persons(cfg.persons, cfg.seed, &persons_def, &addresses)?;
    let real_estate_batches = generate_real_estate(
        n_real_estate,
        cfg.seed,
        &real_estate_def,
        &addresses,
        &persons,
        &companies,
    )?;

    Ok(vec![
        DemoDataset {
            definition: persons_def,
            batches: person_batches,
        },
        DemoDataset {
            definition: companies_def,
            batches: company_batches,
        },
        DemoDataset {
            definition: addresses_def,
            batches: address_batches,
        },
        DemoDataset {
            definition: real_estate_def,
            batches: real_estate_batches,
        },
    ])
}

/// Write each dataset to `dir/{name}.parquet` (Snappy-compressed) and its definition to
/// `dir/{name}.definition.json`, creating `dir` if needed.
///
/// Returns the written paths: for each dataset its Parquet file, then its definition.
pub fn write_parquet(datasets: &[DemoDataset], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Store(format!("cannot create directory {}: {e}", dir.display())))?;
    let mut written = Vec::with_capacity(datasets.len() * 2);
    for ds in datasets {
        let name = &ds.definition.name;

        let path = dir.join(format!("{name}.parquet"));
        let fail = |e: &dyn std::fmt::Display| {
            Error::Store(format!("cannot write {}: {e}", path.display()))
        };
        let file = File::create(&path).map_err(|e| fail(&e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let schema = ds
            .batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| ds.definition.arrow_schema());
        let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| fail(&e))?;
        for batch in &ds.batches {
            writer.write(batch).map_err(|e| fail(&e))?;
        }
        writer.close().map_err(|e| fail(&e))?;
        written.push(path);

        let path = dir.join(format!("{name}.definition.json"));
        let json = serde_json::to_string_pretty(&ds.definition)
            .map_err(|e| Error::Internal(format!("cannot serialise definition `{name}`: {e}")))?;
        std::fs::write(&path, json)
            .map_err(|e| Error::Store(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn small(persons: usize, seed: u64) -> Vec<DemoDataset> {
        generate(&DemoConfig { persons, seed }).unwrap()
    }

    fn rows(ds: &DemoDataset) -> usize {
        ds.batches.iter().map(|b| b.num_rows()).sum()
    }

    fn strings(ds: &DemoDataset, col: &str) -> Vec<Option<String>> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| {
                let a = b.column(i).as_string::<i32>();
                (0..a.len())
                    .map(|r| a.is_valid(r).then(|| a.value(r).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn ints(ds: &DemoDataset, col: &str) -> Vec<Option<i64>> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| {
                let a = b.column(i).as_primitive::<Int64Type>();
                (0..a.len())
                    .map(|r| a.is_valid(r).then(|| a.value(r)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn dates(ds: &DemoDataset, col: &str) -> Vec<i32> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| b.column(i).as_primitive::<Date32Type>().values().to_vec())
            .collect()
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        for z in days_from_civil(1899, 12, 1)..days_from_civil(2031, 1, 1) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn definitions_validate_in_order() {
        let defs = definitions();
        let names: Vec<_> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["persons", "companies", "addresses", "real_estate"]);
        let owners: Vec<_> = defs.iter().map(|d| d.owner.as_str()).collect();
        assert_eq!(owners, ["PMLP", "UR", "VZD", "VZD"]);
        for d in &defs {
            assert_eq!(d.clone().validated().unwrap(), *d);
            assert!(!d.description.is_empty());
            assert!(d.attributes.iter().all(|a| !a.description.is_empty()));
        }
        assert!(
            defs[0]
                .attributes
                .iter()
                .all(|a| a.personal && a.subject.as_deref() == Some("personal_code"))
        );
        assert!(defs[1].attributes.iter().all(|a| !a.personal));
        assert!(defs[2].attributes.iter().all(|a| !a.personal));
        let personal: Vec<_> = defs[3]
            .attributes
            .iter()
            .filter(|a| a.personal)
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(personal, ["owner_code"]);
    }

    #[test]
    fn municipalities_are_43_distinct() {
        let set: HashSet<_> = MUNICIPALITIES.iter().collect();
        assert_eq!(set.len(), 43);
        assert_eq!(MUNICIPALITIES[0], "Rīga");
        assert_eq!(
            MUNICIPALITIES
                .iter()
                .filter(|m| m.ends_with(" novads"))
                .count(),
            36
        );
        for m in &MUNI {
            assert!(m.post.0 <= m.post.1 && m.post.1 <= 5999, "{}", m.name);
            assert!((55.67..=58.09).contains(&m.lat) && (20.97..=28.24).contains(&m.lon));
            assert!(m.city || !m.parishes.is_empty());
        }
    }

    #[test]
    fn deterministic_per_seed() {
        let a = small(3_000, 7);
        let b = small(3_000, 7);
        let c = small(3_000, 8);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.batches, y.batches);
        }
        for (x, z) in a.iter().zip(&c) {
            assert_ne!(x.batches, z.batches, "{}", x.definition.name);
        }
    }

    #[test]
    fn sizes_scale_and_batches_are_bounded() {
        for (n, expect) in [
            (0, [0, 5, 10, 10]),
            (7, [7, 5, 10, 10]),
            (5_000, [5_000, 500, 2_500, 2_500]),
        ] {
            let ds = small(n, DEFAULT_SEED);
            let got: Vec<_> = ds.iter().map(rows).collect();
            assert_eq!(got, expect, "persons = {n}");
        }
        let ds = small(140_000, 1);
        assert_eq!(rows(&ds[0]), 140_000);
        assert_eq!(ds[0].batches.len(), 3);
        for d in &ds {
            for b in &d.batches {
                assert!(b.num_rows() <= MAX_BATCH_ROWS && b.num_rows() > 0);
                assert_eq!(b.schema(), d.definition.arrow_schema());
            }
        }
    }

    #[test]
    fn keys_unique_and_foreign_keys_consistent() {
        let ds = small(20_000, DEFAULT_SEED);
        let (persons, companies, addresses, real_estate) = (&ds[0], &ds[1], &ds[2], &ds[3]);

        let codes: HashSet<String> = strings(persons, "personal_code")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(codes.len(), rows(persons));
        let regs: HashSet<String> = strings(companies, "registration_number")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(regs.len(), rows(companies));
        assert!(
            regs.iter()
                .all(|r| r.len() == 11 && (r.starts_with('4') || r.starts_with('5')))
        );
        let cads: HashSet<String> = strings(real_estate, "cadastre_number")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(cads.len(), rows(real_estate));
        assert!(
            cads.iter()
                .all(|c| c.len() == 11 && c.bytes().all(|b| b.is_ascii_digit()))
        );

        let address_muni: HashMap<i64, String> = ints(addresses, "address_code")
            .into_iter()
            .map(Option::unwrap)
            .zip(
                strings(addresses, "municipality")
                    .into_iter()
                    .map(Option::unwrap),
            )
            .collect();
        assert_eq!(address_muni.len(), rows(addresses));
        assert!(
            address_muni
                .keys()
                .all(|&c| (100_000_000..1_000_000_000).contains(&c))
        );
        assert!(
            address_muni
                .values()
                .all(|m| MUNICIPALITIES.contains(&m.as_str()))
        );

        // Persons: declared address exists and the municipality matches it.
        let mut nulls = 0;
        for (addr, muni) in ints(persons, "declared_address_code")
            .into_iter()
            .zip(strings(persons, "municipality"))
        {
            let muni = muni.unwrap();
            match addr {
                Some(a) => assert_eq!(address_muni[&a], muni),
                None => {
                    nulls += 1;
                    assert!(MUNICIPALITIES.contains(&muni.as_str()));
                }
            }
        }
        assert!(nulls > 0 && nulls < rows(persons) / 10);
        let riga = strings(persons, "municipality")
            .into_iter()
            .filter(|m| m.as_deref() == Some("Rīga"))
            .count();
        assert!((0.25..0.40).contains(&(riga as f64 / rows(persons) as f64)));

        for a in ints(companies, "legal_address_code") {
            assert!(address_muni.contains_key(&a.unwrap()));
        }
        for a in ints(real_estate, "address_code").into_iter().flatten() {
            assert!(address_muni.contains_key(&a));
        }
        let mut kinds = HashMap::new();
        for (owner, kind) in strings(real_estate, "owner_code")
            .into_iter()
            .zip(strings(real_estate, "owner_kind"))
        {
            let (owner, kind) = (owner.unwrap(), kind.unwrap());
            match kind.as_str() {
                "person" => assert!(codes.contains(&owner)),
                "company" => assert!(regs.contains(&owner)),
                other => panic!("owner kind {other}"),
            }
            *kinds.entry(kind).or_insert(0usize) += 1;
        }
        let share = kinds["person"] as f64 / rows(real_estate) as f64;
        assert!((0.7..0.8).contains(&share));
    }

    #[test]
    fn personal_codes_are_valid_and_match_birth_dates() {
        let ds = small(20_000, 99);
        let persons = &ds[0];
        let codes = strings(persons, "personal_code");
        let births = dates(persons, "birth_date");
        let mut new_form = 0;
        for (code, birth) in codes.iter().zip(births) {
            let code = code.as_deref().unwrap();
            let b = code.as_bytes();
            assert_eq!(b.len(), 12);
            assert_eq!(b[6], b'-');
            let digits: Vec<u32> = code
                .bytes()
                .filter(|c| *c != b'-')
                .map(|c| u32::from(c - b'0'))
                .collect();
            assert_eq!(digits.len(), 11);
            let sum: u32 = digits[..10]
                .iter()
                .zip(CHECK_WEIGHTS)
                .map(|(d, w)| d * w)
                .sum();
            assert_eq!((1101 - sum) % 11, digits[10], "{code}");
            if code.starts_with("32") {
                new_form += 1;
                continue;
            }
            let (y, m, d) = civil_from_days(birth);
            let expect = format!("{d:02}{m:02}{:02}-{}", y % 100, y / 100 - 18);
            assert_eq!(&code[..8], expect, "{code}");
        }
        let share = f64::from(new_form) / codes.len() as f64;
        assert!((0.1..0.2).contains(&share), "new-form share {share}");
        let first = days_from_civil(1930, 1, 1);
        assert!(
            dates(persons, "birth_date")
                .iter()
                .all(|&d| (first..=LAST_DAY).contains(&d))
        );
    }

    #[test]
    fn names_and_contacts_look_right() {
        let ds = small(5_000, 3);
        let persons = &ds[0];
        for ((sex, family), email) in strings(persons, "sex")
            .into_iter()
            .zip(strings(persons, "family_name"))
            .zip(strings(persons, "email"))
        {
            let (sex, family) = (sex.unwrap(), family.unwrap());
            let known = FAMILY_LV
                .iter()
                .chain(FAMILY_SLAVIC)
                .any(|&(m, f)| if sex == "M" { m == family } else { f == family });
            assert!(known, "{sex} {family}");
            if let Some(e) = email {
                assert!(e.is_ascii() && e.contains('@'), "{e}");
            }
        }
        for phone in strings(persons, "phone").into_iter().flatten() {
            assert!(phone.starts_with("+371 2") && phone.len() == 13, "{phone}");
        }
        let companies = &ds[1];
        let caps = companies.batches[0]
            .column(7)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        for (r, form) in strings(companies, "legal_form").into_iter().enumerate() {
            let form = form.unwrap();
            assert_eq!(caps.is_valid(r), form == "SIA" || form == "AS", "{form}");
        }
        for name in strings(companies, "name").into_iter().flatten() {
            assert!(
                name.ends_with('"') && name.matches('"').count() == 2,
                "{name}"
            );
        }
    }

    #[test]
    fn write_parquet_round_trip() {
        let ds = small(2_000, 5);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let paths = write_parquet(&ds, &out).unwrap();
        assert_eq!(paths.len(), 8);
        for d in &ds {
            let name = &d.definition.name;
            let file = File::open(out.join(format!("{name}.parquet"))).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            let mut n = 0;
            for b in reader {
                let b = b.unwrap();
                assert_eq!(b.schema().fields(), d.definition.arrow_schema().fields());
                n += b.num_rows();
            }
            assert_eq!(n, rows(d), "{name}");
            let json =
                std::fs::read_to_string(out.join(format!("{name}.definition.json"))).unwrap();
            let back: DatasetDefinition = serde_json::from_str(&json).unwrap();
            assert_eq!(back, d.definition);
        }
    }
}
