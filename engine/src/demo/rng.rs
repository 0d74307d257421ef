//! The generator's PRNG (SplitMix64), weighted choices and calendar arithmetic.

// ---------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and stable forever (unlike a crate's "standard" generator).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

    /// An independent stream per register, so one register's size never shifts another's data.
    pub(super) fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub(super) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    pub(super) fn digit(&mut self) -> u8 {
        self.below(10) as u8
    }
}

/// A weighted choice over indices, by cumulative weights.
pub(super) struct Weights {
    pub(super) cumulative: Vec<u64>,
}

impl Weights {
    pub(super) fn new(weights: impl IntoIterator<Item = u64>) -> Self {
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

    pub(super) fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty weights");
        let x = rng.below(total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Weighted pick from a small static table of `(value, weight)`.
pub(super) fn pick_weighted<T: Copy>(rng: &mut Rng, table: &[(T, u32)]) -> T {
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

pub(super) const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

pub(super) fn civil_from_days(z: i32) -> (i32, u32, u32) {
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

pub(super) const LAST_DAY: i32 = days_from_civil(2025, 12, 31);

pub(super) fn random_day(rng: &mut Rng, from: i32, to: i32) -> i32 {
    rng.range(i64::from(from), i64::from(to)) as i32
}
