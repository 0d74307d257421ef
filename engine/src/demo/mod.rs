//! Synthetic but realistic Latvian registers for demos, tests and benchmarks.
//!
//! Five datasets are generated as Arrow record batches: the population register
//! (`persons`, PMLP), the enterprise register (`companies`, UR), the address register
//! (`addresses`, VZD), the real-estate cadastre (`real_estate`, VZD) and the enterprise
//! register's officials (`officials`, UR: board members, shareholders and beneficial owners
//! of each company, and who may represent it alone). Their sizes scale with the number of
//! persons, their foreign keys are consistent (declared and legal addresses, property
//! addresses and owners, officials' companies and persons all exist) and the data are a pure
//! function of [`DemoConfig`]: the same persons count and seed always give byte-identical
//! batches.
//!
//! | register | owner | primary key | rows |
//! |---|---|---|---|
//! | `persons` | PMLP | `personal_code` | `persons` |
//! | `companies` | UR | `registration_number` | `persons / 10`, at least 5 |
//! | `addresses` | VZD | `address_code` | `persons / 2`, at least 10 |
//! | `real_estate` | VZD | `cadastre_number` | `persons / 2`, at least 10 |
//! | `officials` | UR | `registration_number`, `personal_code`, `role` | about 3.8 per company |
//!
//! `officials` has the attributes `registration_number` (the company), `personal_code` and
//! `person_name` (personal data about the official, subject `personal_code`), `role`
//! (`board_member`, `shareholder` or `beneficial_owner`), `share` (per cent of the capital,
//! `Decimal128(5, 2)`; the shareholders of a company hold exactly 100.00 together; null for
//! board members), `represents` (may represent the company alone) and `since`. Every
//! company has a board of one to three whose first member, the chair, may represent it
//! alone; SIA and AS have one to four shareholders and their beneficial owners (holders of
//! more than 25 %, or the chair when no one holds that much); the single owner of an IK or
//! ZS is board member, sole shareholder and beneficial owner; associations and foundations
//! have a board only. Officials are adults, and some sit on several boards.
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
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder,
};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::definition::{Attribute, DatasetDefinition};
use crate::error::{Error, Result};

mod definitions;
mod generate;
mod reference;
mod rng;

pub use definitions::definitions;
use generate::*;
pub use reference::MUNICIPALITIES;
use reference::*;
use rng::*;

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

/// One generated register (persons, companies, addresses, real_estate or officials): its
/// definition and its rows.
#[derive(Debug, Clone)]
pub struct DemoDataset {
    /// The validated dataset definition.
    pub definition: DatasetDefinition,
    /// The rows, in batches of at most [`MAX_BATCH_ROWS`] rows.
    pub batches: Vec<RecordBatch>,
}

/// Row counts `(addresses, companies, real_estate)` for a number of persons.
fn sizes(persons: usize) -> (usize, usize, usize) {
    (
        (persons / 2).max(10),
        (persons / 10).max(5),
        (persons / 2).max(10),
    )
}

/// Generate the five registers, in the order persons, companies, addresses, real_estate,
/// officials.
///
/// The result is a pure function of `cfg`. Batches hold at most [`MAX_BATCH_ROWS`] rows;
/// a register with no rows has no batches.
pub fn generate(cfg: &DemoConfig) -> Result<Vec<DemoDataset>> {
    let mut defs = definitions().into_iter();
    let (
        Some(persons_def),
        Some(companies_def),
        Some(addresses_def),
        Some(real_estate_def),
        Some(officials_def),
    ) = (
        defs.next(),
        defs.next(),
        defs.next(),
        defs.next(),
        defs.next(),
    )
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
    let official_batches = generate_officials(cfg.seed, &officials_def, &persons, &companies)?;

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
        DemoDataset {
            definition: officials_def,
            batches: official_batches,
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
    use arrow::datatypes::{Date32Type, Decimal128Type, Float64Type, Int64Type};
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

    fn decimals(ds: &DemoDataset, col: &str) -> Vec<Option<i128>> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| {
                let a = b.column(i).as_primitive::<Decimal128Type>();
                (0..a.len())
                    .map(|r| a.is_valid(r).then(|| a.value(r)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn bools(ds: &DemoDataset, col: &str) -> Vec<bool> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| {
                let a = b.column(i).as_boolean();
                (0..a.len()).map(|r| a.value(r)).collect::<Vec<_>>()
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
        assert_eq!(
            names,
            [
                "persons",
                "companies",
                "addresses",
                "real_estate",
                "officials"
            ]
        );
        let owners: Vec<_> = defs.iter().map(|d| d.owner.as_str()).collect();
        assert_eq!(owners, ["PMLP", "UR", "VZD", "VZD", "UR"]);
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
        let officials = &defs[4];
        assert_eq!(
            officials.primary_key,
            ["registration_number", "personal_code", "role"]
        );
        let personal: Vec<_> = officials
            .attributes
            .iter()
            .filter(|a| a.personal)
            .map(|a| (a.name.as_str(), a.subject.as_deref()))
            .collect();
        assert_eq!(
            personal,
            [
                ("personal_code", Some("personal_code")),
                ("person_name", Some("personal_code"))
            ]
        );
        let types: Vec<_> = officials
            .attributes
            .iter()
            .map(|a| (a.name.as_str(), a.data_type.clone(), a.nullable))
            .collect();
        assert_eq!(
            types,
            [
                ("registration_number", DataType::Utf8, false),
                ("personal_code", DataType::Utf8, false),
                ("person_name", DataType::Utf8, true),
                ("role", DataType::Utf8, false),
                ("share", DataType::Decimal128(5, 2), true),
                ("represents", DataType::Boolean, false),
                ("since", DataType::Date32, false),
            ]
        );
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
            (0, [0, 5, 10, 10, 0]),
            (7, [7, 5, 10, 10, 17]),
            (5_000, [5_000, 500, 2_500, 2_500, 1_878]),
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

    /// The officials of one company, as read back from the batches.
    #[derive(Default)]
    struct Officers {
        board: Vec<(String, bool)>,
        holders: Vec<(String, i128)>,
        owners: Vec<(String, Option<i128>)>,
    }

    #[test]
    fn officials_reference_companies_and_adults_and_keys_are_unique() {
        let ds = small(20_000, DEFAULT_SEED);
        let (persons, companies, officials) = (&ds[0], &ds[1], &ds[4]);
        assert_eq!(officials.definition.name, "officials");

        let people: HashMap<String, (i32, String)> = strings(persons, "personal_code")
            .into_iter()
            .map(Option::unwrap)
            .zip(
                dates(persons, "birth_date").into_iter().zip(
                    strings(persons, "given_name")
                        .into_iter()
                        .zip(strings(persons, "family_name"))
                        .map(|(g, f)| format!("{} {}", g.unwrap(), f.unwrap())),
                ),
            )
            .collect();
        let firms: HashMap<String, (String, i32)> = strings(companies, "registration_number")
            .into_iter()
            .map(Option::unwrap)
            .zip(
                strings(companies, "legal_form")
                    .into_iter()
                    .map(Option::unwrap)
                    .zip(dates(companies, "registration_date")),
            )
            .collect();

        let regs = strings(officials, "registration_number");
        let codes = strings(officials, "personal_code");
        let names = strings(officials, "person_name");
        let roles = strings(officials, "role");
        let shares = decimals(officials, "share");
        let represents = bools(officials, "represents");
        let since = dates(officials, "since");
        let n = rows(officials);
        assert!(
            (2.0..4.5).contains(&(n as f64 / rows(companies) as f64)),
            "{n} officials"
        );

        let mut keys = HashSet::new();
        let mut by_company: HashMap<&str, Officers> = HashMap::new();
        let mut seats: HashMap<&str, HashSet<&str>> = HashMap::new();
        for r in 0..n {
            let (reg, code) = (regs[r].as_deref().unwrap(), codes[r].as_deref().unwrap());
            let role = roles[r].as_deref().unwrap();
            assert!(
                keys.insert((reg, code, role)),
                "duplicate key {reg} {code} {role}"
            );
            let (form, registered) = &firms[reg];
            let (birth, name) = &people[code];
            assert_eq!(names[r].as_deref(), Some(name.as_str()));
            assert!(
                since[r] >= *registered && since[r] <= LAST_DAY,
                "{reg} {code}"
            );
            assert!(
                since[r] >= of_age(*birth),
                "{code} is a minor on {}",
                since[r]
            );
            let o = by_company.entry(reg).or_default();
            match role {
                "board_member" => {
                    assert_eq!(shares[r], None);
                    o.board.push((code.to_owned(), represents[r]));
                    seats.entry(code).or_default().insert(reg);
                }
                "shareholder" => {
                    assert!(!represents[r]);
                    let share = shares[r].expect("a shareholder has a share");
                    assert!(share > 0 && share <= 10_000, "{form} {share}");
                    o.holders.push((code.to_owned(), share));
                }
                "beneficial_owner" => {
                    assert!(!represents[r]);
                    assert!(since[r] >= BENEFICIAL_OWNERS_FROM);
                    o.owners.push((code.to_owned(), shares[r]));
                }
                other => panic!("role {other}"),
            }
        }
        assert_eq!(keys.len(), n);
        assert_eq!(by_company.len(), firms.len(), "every company has officials");

        let mut by_control = 0;
        for (reg, o) in &by_company {
            let (form, _) = &firms[*reg];
            // A board of one to three, whose chair may represent the company alone.
            assert!((1..=3).contains(&o.board.len()), "{reg}");
            assert!(o.board.iter().any(|(_, alone)| *alone), "{reg}");
            match form.as_str() {
                "SIA" | "AS" => {
                    assert!((1..=4).contains(&o.holders.len()), "{reg}");
                    let total: i128 = o.holders.iter().map(|(_, s)| s).sum();
                    assert_eq!(total, 10_000, "{reg}: shares sum to 100.00");
                    let mut expect: Vec<_> = o
                        .holders
                        .iter()
                        .filter(|(_, s)| *s > 2_500)
                        .map(|(c, s)| (c.clone(), Some(*s)))
                        .collect();
                    if expect.is_empty() {
                        by_control += 1;
                        expect.push((o.board[0].0.clone(), None));
                    }
                    assert_eq!(o.owners, expect, "{reg}");
                }
                "IK" | "ZS" => {
                    let owner = &o.board[0].0;
                    assert_eq!(o.board, [(owner.clone(), true)], "{reg}");
                    assert_eq!(o.holders, [(owner.clone(), 10_000)], "{reg}");
                    assert_eq!(o.owners, [(owner.clone(), Some(10_000))], "{reg}");
                }
                "Biedrība" | "Nodibinājums" => {
                    assert!(o.holders.is_empty() && o.owners.is_empty(), "{reg}");
                }
                other => panic!("legal form {other}"),
            }
        }
        assert!(
            by_control > 0,
            "no company has a beneficial owner by control"
        );
        // Some people sit on several boards.
        let busy = seats.values().filter(|s| s.len() >= 2).count();
        assert!(busy > 20, "{busy} people on several boards");
        assert!(seats.values().any(|s| s.len() >= 4));
    }

    #[test]
    fn shares_split_exactly() {
        let mut rng = Rng::new(1, 99);
        let mut out = Vec::new();
        for n in 0..=4 {
            for _ in 0..2_000 {
                split_shares(&mut rng, n, &mut out);
                assert_eq!(out.len(), n);
                if n > 0 {
                    assert_eq!(out.iter().sum::<i64>(), WHOLE_SHARE);
                    assert!(out.iter().all(|&s| s > 0));
                    assert!(out.windows(2).all(|w| w[0] >= w[1]), "{out:?}");
                }
            }
        }
        assert_eq!(
            of_age(days_from_civil(2000, 2, 29)),
            days_from_civil(2018, 3, 1)
        );
        assert_eq!(
            of_age(days_from_civil(2001, 7, 4)),
            days_from_civil(2019, 7, 4)
        );
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

    fn floats(ds: &DemoDataset, col: &str) -> Vec<f64> {
        let i = ds.definition.ordinal(col).unwrap();
        ds.batches
            .iter()
            .flat_map(|b| b.column(i).as_primitive::<Float64Type>().values().to_vec())
            .collect()
    }

    /// Distance in metres on the local tangent plane.
    fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
        let dy = (a.0 - b.0) * M_PER_DEG_LAT;
        let dx = (a.1 - b.1) * m_per_deg_lon((a.0 + b.0) / 2.0);
        dx.hypot(dy)
    }

    #[test]
    fn municipality_discs_do_not_overlap() {
        for (i, a) in MUNI.iter().enumerate() {
            assert!(a.radius_km > 1.0, "{}", a.name);
            for b in &MUNI[i + 1..] {
                let d = metres((a.lat, a.lon), (b.lat, b.lon));
                assert!(
                    d > (a.radius_km + b.radius_km) * 1_000.0,
                    "{} and {} overlap",
                    a.name,
                    b.name
                );
            }
        }
    }

    /// Whether `p` (lon, lat) is inside the closed ring (ray casting).
    fn inside(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
        let mut c = false;
        for w in ring.windows(2) {
            let ((x1, y1), (x2, y2)) = (w[0], w[1]);
            if (y1 > p.1) != (y2 > p.1) && p.0 < (x2 - x1) * (p.1 - y1) / (y2 - y1) + x1 {
                c = !c;
            }
        }
        c
    }

    #[test]
    fn addresses_and_properties_lie_in_their_municipality() {
        let ds = small(20_000, DEFAULT_SEED);
        let (addresses, estates) = (&ds[2], &ds[3]);
        let muni = strings(addresses, "municipality");
        let (lat, lon) = (
            floats(addresses, "latitude"),
            floats(addresses, "longitude"),
        );
        let mut at = std::collections::HashMap::new();
        for (i, code) in ints(addresses, "address_code").into_iter().enumerate() {
            let name = muni[i].as_deref().unwrap();
            let m = MUNI.iter().find(|m| m.name == name).unwrap();
            let d = metres((lat[i], lon[i]), (m.lat, m.lon));
            // The tangent-plane distance differs from the generator's by a few metres at 20 km.
            assert!(d <= m.radius_km * 1_005.0, "{name}: {d} m from the centre");
            if name == "Rīga" {
                assert!((24.0..=24.3).contains(&lon[i]) && (56.88..=57.05).contains(&lat[i]));
            }
            at.insert(code.unwrap(), (lat[i], lon[i]));
        }
        let kinds = strings(estates, "property_type");
        let area = floats(estates, "area_m2");
        let addr = ints(estates, "address_code");
        let (clat, clon) = (
            floats(estates, "centroid_lat"),
            floats(estates, "centroid_lon"),
        );
        let boundary = strings(estates, "boundary");
        let mut polygons = 0;
        for i in 0..kinds.len() {
            let kind = kinds[i].as_deref().unwrap();
            let c = (clat[i], clon[i]);
            if let Some(a) = addr[i] {
                let d = metres(c, at[&a]);
                let reach = if kind == "apartment" { 0.01 } else { 25.1 };
                assert!(d <= reach, "{kind} {d} m from its address");
            } else {
                assert!(
                    MUNI.iter()
                        .any(|m| { metres(c, (m.lat, m.lon)) <= m.radius_km * 1_005.0 })
                );
            }
            let land = matches!(kind, "land" | "land_with_building");
            assert_eq!(boundary[i].is_some(), land, "{kind}");
            let Some(b) = &boundary[i] else { continue };
            polygons += 1;
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(v["type"], "Polygon");
            let rings = v["coordinates"].as_array().unwrap();
            assert_eq!(rings.len(), 1);
            let ring: Vec<(f64, f64)> = rings[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            assert_eq!(ring.len(), 5);
            assert_eq!(ring[0], ring[4], "closed");
            assert!(inside(&ring, (c.1, c.0)), "the boundary holds its centroid");
            let mut twice = 0.0;
            for w in ring.windows(2) {
                let p = (
                    (w[0].0 - c.1) * m_per_deg_lon(c.0),
                    (w[0].1 - c.0) * M_PER_DEG_LAT,
                );
                let q = (
                    (w[1].0 - c.1) * m_per_deg_lon(c.0),
                    (w[1].1 - c.0) * M_PER_DEG_LAT,
                );
                twice += p.0 * q.1 - q.0 * p.1;
                assert!(metres(c, (w[0].1, w[0].0)) <= MAX_BOUNDARY_REACH_M);
            }
            let ratio = (twice / 2.0).abs() / area[i];
            assert!(
                (0.5..=1.5).contains(&ratio),
                "area {} vs {}",
                twice / 2.0,
                area[i]
            );
        }
        assert!(polygons > 1_000, "{polygons}");
    }

    #[test]
    fn write_parquet_round_trip() {
        let ds = small(2_000, 5);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let paths = write_parquet(&ds, &out).unwrap();
        assert_eq!(paths.len(), 10);
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
