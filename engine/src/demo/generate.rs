//! Generation of each register's rows, with the indexes later registers draw keys from.

use super::*;

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

/// What later registers need to know about the addresses.
pub(super) struct AddressIndex {
    pub(super) codes: Vec<i64>,
    pub(super) municipality: Vec<u8>,
    /// Latitude and longitude of each address (as written to the register).
    pub(super) lat: Vec<f64>,
    pub(super) lon: Vec<f64>,
    /// Indices of addresses with an apartment, and of those without.
    pub(super) with_apartment: Vec<usize>,
    pub(super) without_apartment: Vec<usize>,
}

impl AddressIndex {
    pub(super) fn pick(&self, rng: &mut Rng, apartment: bool) -> usize {
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

/// Personal codes, 12 ASCII bytes each, back to back, birth days and names.
pub(super) struct PersonIndex {
    pub(super) codes: String,
    pub(super) birth: Vec<i32>,
    /// Given and family name.
    pub(super) names: Vec<(&'static str, &'static str)>,
}

impl PersonIndex {
    pub(super) fn code(&self, i: usize) -> &str {
        &self.codes[i * 12..i * 12 + 12]
    }
}

pub(super) struct CompanyIndex {
    pub(super) numbers: Vec<u64>,
    pub(super) registered: Vec<i32>,
    pub(super) forms: Vec<&'static str>,
}

/// Appends rows to column builders and cuts a batch every [`MAX_BATCH_ROWS`] rows.
pub(super) struct Batcher {
    pub(super) schema: SchemaRef,
    pub(super) rows: usize,
    pub(super) batches: Vec<RecordBatch>,
}

impl Batcher {
    pub(super) fn new(def: &DatasetDefinition) -> Self {
        Self {
            schema: def.arrow_schema(),
            rows: 0,
            batches: Vec::new(),
        }
    }

    /// Count a row; true when the batch is full and must be cut.
    pub(super) fn row_done(&mut self) -> bool {
        self.rows += 1;
        self.rows == MAX_BATCH_ROWS
    }

    pub(super) fn cut(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        self.batches
            .push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        self.rows = 0;
        Ok(())
    }
}

pub(super) fn cap(rows: usize) -> usize {
    rows.min(MAX_BATCH_ROWS)
}

pub(super) fn decimal_builder(rows: usize) -> Decimal128Builder {
    Decimal128Builder::with_capacity(cap(rows)).with_data_type(DataType::Decimal128(18, 2))
}

/// Round to `1 / scale`, exactly reproducibly.
pub(super) fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

pub(super) fn to_cents(eur: f64) -> i128 {
    (eur * 100.0).round() as i128
}

/// Lower-case ASCII form of a Latvian name, for e-mail addresses.
pub(super) fn push_ascii_lower(out: &mut String, s: &str) {
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
pub(super) const CHECK_WEIGHTS: [u32; 10] = [1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check digit of a personal code's first ten digits, or `None` when the rule gives 10
/// (no valid code has those ten digits).
pub(super) fn check_digit(digits: &[u8; 10]) -> Option<u8> {
    let sum: u32 = digits
        .iter()
        .zip(CHECK_WEIGHTS)
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    let c = (1101 - sum) % 11;
    (c < 10).then_some(c as u8)
}

/// Draw a unique personal code: old form from the birth date, or new form `32NNNN-NNNNN`.
pub(super) fn draw_personal_code(
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

// ---------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------

/// Metres per degree of latitude (the mean; good to a few parts in a thousand in Latvia).
pub(super) const M_PER_DEG_LAT: f64 = 111_320.0;

/// Metres per degree of longitude at `lat`.
pub(super) fn m_per_deg_lon(lat: f64) -> f64 {
    M_PER_DEG_LAT * lat.to_radians().cos()
}

/// The point `(lat, lon)` at `dist` metres from `(lat, lon)` in the direction `angle`
/// (radians, counter-clockwise from east), on the local tangent plane.
pub(super) fn offset(lat: f64, lon: f64, dist: f64, angle: f64) -> (f64, f64) {
    (
        lat + dist * angle.sin() / M_PER_DEG_LAT,
        lon + dist * angle.cos() / m_per_deg_lon(lat),
    )
}

/// A point of the municipality's disc (uniform in area) from two uniform draws.
pub(super) fn point_in(m: &Municipality, u_radius: f64, u_angle: f64) -> (f64, f64) {
    offset(
        m.lat,
        m.lon,
        m.radius_km * 1_000.0 * u_radius.sqrt(),
        u_angle * std::f64::consts::TAU,
    )
}

/// The farthest a land property's boundary reaches from its centroid, in metres: the
/// largest demo plot (about 250 000 m²) drawn by [`write_boundary`] stays within it.
pub(super) const MAX_BOUNDARY_REACH_M: f64 = 500.0;

/// Write a land property's boundary as a GeoJSON `Polygon` (one closed ring of five WGS 84
/// positions, `[longitude, latitude]` to 7 decimals) into `out`: an irregular quadrilateral
/// around `(lat, lon)` of about `area_m2` (its corners at increasing angles a quarter turn
/// apart ± 15°, at 0.85–1.15 of a square's half-diagonal), so it contains the centroid and
/// never crosses itself.
pub(super) fn write_boundary(rng: &mut Rng, out: &mut String, lat: f64, lon: f64, area_m2: f64) {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_6, SQRT_2, TAU};
    let half_diagonal = area_m2.max(1.0).sqrt() / SQRT_2;
    let start = rng.unit() * TAU;
    let mut ring = [(0.0, 0.0); 4];
    for (k, corner) in ring.iter_mut().enumerate() {
        let angle = start + k as f64 * FRAC_PI_2 + (rng.unit() - 0.5) * FRAC_PI_6;
        let dist = (half_diagonal * (0.85 + 0.3 * rng.unit())).min(MAX_BOUNDARY_REACH_M);
        let (y, x) = offset(lat, lon, dist, angle);
        *corner = (round_to(x, 1e7), round_to(y, 1e7));
    }
    out.push_str(r#"{"type":"Polygon","coordinates":[["#);
    for (i, (x, y)) in ring.iter().chain(&ring[..1]).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write!(out, "[{x},{y}]").expect("write to String");
    }
    out.push_str("]]}");
}

pub(super) fn generate_addresses(
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
        lat: Vec::with_capacity(n),
        lon: Vec::with_capacity(n),
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

        // Inside the municipality's disc. Four draws as the generator always made here (so
        // the rows after keep their values); the fractional part of the sum of two uniform
        // draws is uniform again.
        let (a, b, c, d) = (rng.unit(), rng.unit(), rng.unit(), rng.unit());
        let (lat, lon) = point_in(m, (a + c).fract(), (b + d).fract());
        let (lat, lon) = (
            round_to(lat.clamp(55.68, 58.08), 1e6),
            round_to(lon.clamp(20.98, 28.23), 1e6),
        );

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
        lat_b.append_value(lat);
        lon_b.append_value(lon);
        index.codes.push(code);
        index.municipality.push(mi as u8);
        index.lat.push(lat);
        index.lon.push(lon);

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

pub(super) fn generate_persons(
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
        names: Vec::with_capacity(n),
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
        index.names.push((given, family));

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

pub(super) fn employees(rng: &mut Rng, form: &str) -> i32 {
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

pub(super) fn share_capital(rng: &mut Rng, form: &str) -> Option<i128> {
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

pub(super) fn generate_companies(
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
        forms: Vec::with_capacity(n),
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
        index.forms.push(form);

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

pub(super) fn generate_real_estate(
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
    let mut clon_b = Float64Builder::with_capacity(c);
    let mut clat_b = Float64Builder::with_capacity(c);
    let mut bound_b = StringBuilder::with_capacity(c, c * 60);
    // Locations come from their own stream, so adding them left every other value as it was.
    let mut geo = Rng::new(seed, 6);
    let mut boundary = String::with_capacity(200);

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
        let (address, mi, at) = if addressed && !addresses.codes.is_empty() {
            let a = addresses.pick(&mut rng, kind == "apartment");
            (
                Some(addresses.codes[a]),
                usize::from(addresses.municipality[a]),
                Some((addresses.lat[a], addresses.lon[a])),
            )
        } else {
            (None, muni_weights.pick(&mut rng), None)
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

        // The centroid: an apartment at its building's address point, a building or land
        // a few metres from its address, an unaddressed property anywhere in its
        // municipality. Land (with or without a building) has a boundary around it.
        let (lat, lon) = match at {
            Some((lat, lon)) if kind == "apartment" => (lat, lon),
            Some((lat, lon)) => {
                let reach = if kind == "building" { 10.0 } else { 25.0 };
                offset(
                    lat,
                    lon,
                    reach * geo.unit(),
                    geo.unit() * std::f64::consts::TAU,
                )
            }
            None => point_in(m, geo.unit(), geo.unit()),
        };
        let (lat, lon) = (round_to(lat, 1e7), round_to(lon, 1e7));
        boundary.clear();
        if matches!(kind, "land" | "land_with_building") {
            write_boundary(&mut geo, &mut boundary, lat, lon, area);
        }

        cad_b.append_value(&cad);
        type_b.append_value(kind);
        area_b.append_value(area);
        addr_b.append_option(address);
        owner_b.append_value(owner);
        kind_b.append_value(owner_kind);
        value_b.append_value(to_cents(value.max(50.0)));
        date_b.append_value(registered);
        clon_b.append_value(lon);
        clat_b.append_value(lat);
        if boundary.is_empty() {
            bound_b.append_null();
        } else {
            bound_b.append_value(&boundary);
        }

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
                Arc::new(clon_b.finish()),
                Arc::new(clat_b.finish()),
                Arc::new(bound_b.finish()),
            ])?;
        }
    }
    Ok(batcher.batches)
}

// ---------------------------------------------------------------------------------------
// Officials
// ---------------------------------------------------------------------------------------

/// The day a person born on `birth` turns 18 (a 29 February birthday falls on 1 March).
pub(super) fn of_age(birth: i32) -> i32 {
    let (y, m, d) = civil_from_days(birth);
    if m == 2 && d == 29 {
        days_from_civil(y + 18, 3, 1)
    } else {
        days_from_civil(y + 18, m, d)
    }
}

/// Companies have declared their beneficial owners to the register since 1 December 2017.
pub(super) const BENEFICIAL_OWNERS_FROM: i32 = days_from_civil(2017, 12, 1);

/// A whole company in hundredths of a per cent.
pub(super) const WHOLE_SHARE: i64 = 10_000;

/// A shareholder is a beneficial owner with more than this share (25 %, in hundredths).
pub(super) const BENEFICIAL_SHARE: i64 = 2_500;

/// Split [`WHOLE_SHARE`] among `n` shareholders, largest first, into `out`: equal partners
/// (the first takes the odd hundredth, 3 × 33.33 + 0.01), or unequal shares, mostly in
/// whole per cent. Integer arithmetic only, so the shares sum to exactly 100.00.
pub(super) fn split_shares(rng: &mut Rng, n: usize, out: &mut Vec<i64>) {
    out.clear();
    match n {
        0 => {}
        1 => out.push(WHOLE_SHARE),
        _ if rng.chance(0.3) => {
            let each = WHOLE_SHARE / n as i64;
            out.resize(n, each);
            out[0] += WHOLE_SHARE - each * n as i64;
        }
        _ => {
            let unit = if rng.chance(0.8) { 100 } else { 1 };
            let total = WHOLE_SHARE / unit;
            for _ in 0..n {
                let u = rng.unit();
                out.push(1 + (u * u * 100.0) as i64);
            }
            let weights: i64 = out.iter().sum();
            for s in out.iter_mut() {
                *s = (total * *s / weights).max(1);
            }
            out.sort_unstable_by(|a, b| b.cmp(a));
            let rest: i64 = out[1..].iter().sum();
            out[0] = total - rest;
            out.sort_unstable_by(|a, b| b.cmp(a));
            for s in out.iter_mut() {
                *s *= unit;
            }
        }
    }
}

/// Draw an adult for a position, not one for whom `taken` is true. One draw in ten comes
/// from the `busy` few (professional directors and investors, on many boards); officials
/// are seldom under 21 or over 80. `None` when no free person turns up in a few tries (a
/// tiny population).
pub(super) fn draw_official(
    rng: &mut Rng,
    adults: &[u32],
    busy: &[u32],
    persons: &PersonIndex,
    taken: impl Fn(u32) -> bool,
) -> Option<u32> {
    for _ in 0..16 {
        let p = if rng.chance(0.1) {
            *rng.pick(busy)
        } else {
            *rng.pick(adults)
        };
        if taken(p) {
            continue;
        }
        let age = (LAST_DAY - persons.birth[p as usize]) / 365;
        if !(21..=80).contains(&age) && rng.chance(0.8) {
            continue;
        }
        return Some(p);
    }
    None
}

/// One row of the officials register, before it is written.
pub(super) struct Official {
    pub(super) person: u32,
    pub(super) role: &'static str,
    pub(super) share: Option<i64>,
    pub(super) represents: bool,
    pub(super) since: i32,
}

/// Column builders of the officials register.
pub(super) struct OfficialRows {
    batcher: Batcher,
    reg_b: StringBuilder,
    code_b: StringBuilder,
    name_b: StringBuilder,
    role_b: StringBuilder,
    share_b: Decimal128Builder,
    represents_b: BooleanBuilder,
    since_b: Date32Builder,
    name: String,
}

impl OfficialRows {
    pub(super) fn new(def: &DatasetDefinition, expected_rows: usize) -> Self {
        let c = cap(expected_rows);
        Self {
            batcher: Batcher::new(def),
            reg_b: StringBuilder::with_capacity(c, c * 11),
            code_b: StringBuilder::with_capacity(c, c * 12),
            name_b: StringBuilder::with_capacity(c, c * 16),
            role_b: StringBuilder::with_capacity(c, c * 12),
            share_b: Decimal128Builder::with_capacity(c).with_data_type(DataType::Decimal128(5, 2)),
            represents_b: BooleanBuilder::with_capacity(c),
            since_b: Date32Builder::with_capacity(c),
            name: String::with_capacity(48),
        }
    }

    pub(super) fn push(&mut self, reg: &str, persons: &PersonIndex, o: &Official) -> Result<()> {
        let p = o.person as usize;
        let (given, family) = persons.names[p];
        self.name.clear();
        self.name.push_str(given);
        self.name.push(' ');
        self.name.push_str(family);
        self.reg_b.append_value(reg);
        self.code_b.append_value(persons.code(p));
        self.name_b.append_value(&self.name);
        self.role_b.append_value(o.role);
        self.share_b.append_option(o.share.map(i128::from));
        self.represents_b.append_value(o.represents);
        self.since_b.append_value(o.since);
        if self.batcher.row_done() {
            self.cut()?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        self.batcher.cut(vec![
            Arc::new(self.reg_b.finish()),
            Arc::new(self.code_b.finish()),
            Arc::new(self.name_b.finish()),
            Arc::new(self.role_b.finish()),
            Arc::new(self.share_b.finish()),
            Arc::new(self.represents_b.finish()),
            Arc::new(self.since_b.finish()),
        ])
    }

    pub(super) fn finish(mut self) -> Result<Vec<RecordBatch>> {
        if self.batcher.rows > 0 {
            self.cut()?;
        }
        Ok(self.batcher.batches)
    }
}

/// The officials of every company: 1–3 board members (the first is the chair, who may
/// always represent the company alone); for SIA and AS 1–4 shareholders whose shares sum to
/// exactly 100.00 and the beneficial owners (shareholders with more than 25 %, or the chair
/// when none has); for IK and ZS one owner who is board member, sole shareholder and
/// beneficial owner; for associations and foundations a board only. Officials are adults
/// from `persons`, in a role never before the company's registration or their 18th birthday;
/// in a tiny population with too few free adults some positions stay empty.
pub(super) fn generate_officials(
    seed: u64,
    def: &DatasetDefinition,
    persons: &PersonIndex,
    companies: &CompanyIndex,
) -> Result<Vec<RecordBatch>> {
    let mut rng = Rng::new(seed, 5);
    let mut out = OfficialRows::new(def, companies.numbers.len() * 4);
    let adults: Vec<u32> = (0..persons.birth.len())
        .filter(|&p| of_age(persons.birth[p]) <= LAST_DAY)
        .map(|p| p as u32)
        .collect();
    if adults.is_empty() {
        return out.finish();
    }
    // About one adult in a hundred sits on several boards or holds several companies.
    let busy: Vec<u32> = (0..(adults.len() / 100).max(1))
        .map(|_| *rng.pick(&adults))
        .collect();

    let mut reg = String::with_capacity(12);
    let mut board: Vec<(u32, i32)> = Vec::with_capacity(3);
    let mut holders: Vec<(u32, i32)> = Vec::with_capacity(4);
    let mut shares: Vec<i64> = Vec::with_capacity(4);

    for k in 0..companies.numbers.len() {
        let form = companies.forms[k];
        let registered = companies.registered[k];
        reg.clear();
        write!(reg, "{:011}", companies.numbers[k]).expect("write");
        board.clear();
        holders.clear();

        let sole = matches!(form, "IK" | "ZS");
        let (board_size, holder_count, chair_holds, alone) = match form {
            "IK" | "ZS" => (1, 1, 1.0, 1.0),
            "SIA" => (
                pick_weighted(&mut rng, &[(1, 70), (2, 20), (3, 10)]),
                pick_weighted(&mut rng, &[(1, 62), (2, 25), (3, 9), (4, 4)]),
                0.6,
                0.5,
            ),
            "AS" => (
                pick_weighted(&mut rng, &[(1, 20), (2, 30), (3, 50)]),
                pick_weighted(&mut rng, &[(1, 30), (2, 25), (3, 25), (4, 20)]),
                0.3,
                0.5,
            ),
            _ => (
                pick_weighted(&mut rng, &[(1, 45), (2, 15), (3, 40)]),
                0,
                0.0,
                0.25,
            ),
        };

        for i in 0..board_size {
            let Some(p) = draw_official(&mut rng, &adults, &busy, persons, |p| {
                board.iter().any(|&(b, _)| b == p)
            }) else {
                break;
            };
            let earliest = registered.max(of_age(persons.birth[p as usize]));
            let since = if sole || (i == 0 && rng.chance(0.6)) {
                earliest
            } else {
                random_day(&mut rng, earliest, LAST_DAY)
            };
            board.push((p, since));
        }
        let Some(&(chair, chair_since)) = board.first() else {
            continue;
        };

        for i in 0..holder_count {
            if i == 0 && rng.chance(chair_holds) {
                let since = if sole {
                    chair_since
                } else {
                    registered.max(of_age(persons.birth[chair as usize]))
                };
                holders.push((chair, since));
                continue;
            }
            let Some(p) = draw_official(&mut rng, &adults, &busy, persons, |p| {
                holders.iter().any(|&(h, _)| h == p)
            }) else {
                break;
            };
            let earliest = registered.max(of_age(persons.birth[p as usize]));
            let since = if rng.chance(0.5) {
                earliest
            } else {
                random_day(&mut rng, earliest, LAST_DAY)
            };
            holders.push((p, since));
        }
        split_shares(&mut rng, holders.len(), &mut shares);

        for (i, &(person, since)) in board.iter().enumerate() {
            let represents = i == 0 || rng.chance(alone);
            out.push(
                &reg,
                persons,
                &Official {
                    person,
                    role: "board_member",
                    share: None,
                    represents,
                    since,
                },
            )?;
        }
        for (&(person, since), &share) in holders.iter().zip(&shares) {
            out.push(
                &reg,
                persons,
                &Official {
                    person,
                    role: "shareholder",
                    share: Some(share),
                    represents: false,
                    since,
                },
            )?;
        }
        if holders.is_empty() {
            continue;
        }
        let mut owners = 0;
        for (&(person, since), &share) in holders.iter().zip(&shares) {
            if share > BENEFICIAL_SHARE {
                owners += 1;
                out.push(
                    &reg,
                    persons,
                    &Official {
                        person,
                        role: "beneficial_owner",
                        share: Some(share),
                        represents: false,
                        since: since.max(BENEFICIAL_OWNERS_FROM),
                    },
                )?;
            }
        }
        if owners == 0 {
            // No one owns more than 25 %: the chair is registered as the beneficial owner
            // by control (the senior managing official).
            out.push(
                &reg,
                persons,
                &Official {
                    person: chair,
                    role: "beneficial_owner",
                    share: None,
                    represents: false,
                    since: chair_since.max(BENEFICIAL_OWNERS_FROM),
                },
            )?;
        }
    }
    out.finish()
}
