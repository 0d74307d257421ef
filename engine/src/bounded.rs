//! Bounds on the SQL functions whose output can be far larger than their input.
//!
//! The memory pool accounts for what operators hold (sorts, joins, aggregates), not for the
//! values a scalar function allocates: `repeat('x', 2000000000)` makes a 2 GB string in one
//! allocation, `range(1000000000)` an 8 GB list, and a few of them at once would take the
//! process down. Each function listed in [`AMPLIFIERS`] is replaced in every session by a
//! wrapper that computes, before it runs, an upper bound of the bytes it would produce for
//! the batch at hand, and refuses with a resource error over [`MAX_FUNCTION_OUTPUT`]. Every
//! other function's output is bounded by its input (a few times it at most), and its input
//! by the data and by the bounded functions.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::compute::kernels::length::length;
use arrow::datatypes::{DataType, FieldRef, Int64Type, IntervalMonthDayNanoType, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

use crate::error::Error;

/// Most bytes one call of a bounded function may produce for one batch.
pub const MAX_FUNCTION_OUTPUT: u64 = 64 << 20;

/// An upper bound of the bytes a function makes from `args` (arrays of the batch's rows).
type Estimate = fn(&[ArrayRef]) -> Result<u64>;

/// The bounded functions (by their DataFusion names; aliases follow) and their estimates.
pub const AMPLIFIERS: [&str; 9] = [
    "repeat",
    "lpad",
    "rpad",
    "replace",
    "regexp_replace",
    "array_repeat",
    "array_resize",
    "range",
    "generate_series",
];

fn estimate_of(name: &str) -> Option<Estimate> {
    Some(match name {
        "repeat" => |a: &[ArrayRef]| Ok(sum_product(&lengths(&a[0])?, &counts(&a[1])?)),
        "lpad" | "rpad" => |a: &[ArrayRef]| {
            // Up to 4 bytes a character, plus the string itself when it is longer.
            let chars = counts(&a[1])?;
            let own = lengths(&a[0])?;
            Ok(chars
                .iter()
                .zip(&own)
                .map(|(n, l)| n.saturating_mul(4).saturating_add(*l))
                .fold(0u64, u64::saturating_add))
        },
        // Each of the (at most len + 1) matches, the empty one included, becomes `to`.
        "replace" | "regexp_replace" => |a: &[ArrayRef]| {
            let s = lengths(&a[0])?;
            let to = lengths(&a[2])?;
            Ok(s.iter()
                .zip(&to)
                .map(|(s, t)| s.saturating_add(1).saturating_mul(t.saturating_add(1)))
                .fold(0u64, u64::saturating_add))
        },
        "array_repeat" => |a: &[ArrayRef]| {
            let each = element_bytes(&a[0]);
            Ok(counts(&a[1])?
                .iter()
                .map(|n| n.saturating_mul(each))
                .fold(0u64, u64::saturating_add))
        },
        "array_resize" => |a: &[ArrayRef]| {
            let each = match a[0].data_type() {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.data_type().primitive_width().unwrap_or(16) as u64
                }
                _ => 16,
            };
            Ok(counts(&a[1])?
                .iter()
                .map(|n| n.saturating_mul(each))
                .fold(0u64, u64::saturating_add))
        },
        "range" | "generate_series" => series_bytes,
        _ => return None,
    })
}

/// Replace each of [`AMPLIFIERS`] in `state` by its bounded wrapper.
pub(crate) fn bound_functions(state: &mut SessionState) -> Result<()> {
    for name in AMPLIFIERS {
        let Some(inner) = state.scalar_functions().get(name).cloned() else {
            continue; // not in this build of DataFusion: nothing to bound
        };
        let bounded = ScalarUDF::new_from_impl(Bounded { inner });
        state.register_udf(Arc::new(bounded))?;
    }
    Ok(())
}

/// A function that refuses to run when its output would exceed [`MAX_FUNCTION_OUTPUT`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Scalars are expanded to one row: a call on scalars is made once.
        let rows = if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            1
        } else {
            args.number_rows
        };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let bytes = match estimate_of(self.inner.name()) {
            Some(estimate) if arrays.len() >= min_args(self.inner.name()) => estimate(&arrays)?,
            _ => 0, // a call the function itself refuses
        };
        if bytes > MAX_FUNCTION_OUTPUT {
            return Err(DataFusionError::External(Box::new(
                Error::ResourcesExhausted(format!(
                    "`{}` would make up to {bytes} bytes for one batch; one call may make at \
                     most {} MiB",
                    self.inner.name(),
                    MAX_FUNCTION_OUTPUT >> 20
                )),
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

fn min_args(name: &str) -> usize {
    match name {
        "range" | "generate_series" => 1,
        "replace" | "regexp_replace" => 3,
        _ => 2,
    }
}

/// Byte lengths of a string or binary column, nulls as 0.
fn lengths(a: &ArrayRef) -> Result<Vec<u64>> {
    let lens = match a.data_type() {
        DataType::Utf8View | DataType::BinaryView => length(&cast(a, &DataType::LargeBinary)?)?,
        DataType::Dictionary(_, _) => length(&cast(a, &DataType::LargeBinary)?)?,
        DataType::Null => return Ok(vec![0; a.len()]),
        _ => length(a)?,
    };
    counts(&lens)
}

/// A count column as u64 (nulls and negatives as 0).
fn counts(a: &ArrayRef) -> Result<Vec<u64>> {
    let c = cast(a, &DataType::Int64)?;
    let c = c.as_primitive::<Int64Type>();
    Ok((0..c.len())
        .map(|i| {
            if c.is_null(i) {
                0
            } else {
                c.value(i).max(0) as u64
            }
        })
        .collect())
}

fn sum_product(a: &[u64], b: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.saturating_mul(*y))
        .fold(0u64, u64::saturating_add)
}

/// Bytes of one element of `a` (at least 8).
fn element_bytes(a: &ArrayRef) -> u64 {
    let n = a.len().max(1) as u64;
    (a.get_array_memory_size() as u64 / n).max(8)
}

/// `range` / `generate_series` as a scalar function: `(stop)`, `(start, stop)` or
/// `(start, stop, step)` over integers, dates or timestamps (with an interval step).
fn series_bytes(a: &[ArrayRef]) -> Result<u64> {
    let (start, stop, step) = match a.len() {
        1 => (None, &a[0], None),
        2 => (Some(&a[0]), &a[1], None),
        _ => (Some(&a[0]), &a[1], Some(&a[2])),
    };
    let temporal = !stop.data_type().is_integer() && stop.data_type() != &DataType::Null;
    let to_i64 = |x: &ArrayRef| -> Result<Vec<Option<i64>>> {
        let x = if temporal {
            let ns = cast(x, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
            cast(&ns, &DataType::Int64)?
        } else {
            cast(x, &DataType::Int64)?
        };
        let x = x.as_primitive::<Int64Type>();
        Ok((0..x.len())
            .map(|i| (!x.is_null(i)).then(|| x.value(i)))
            .collect())
    };
    let stops = to_i64(stop)?;
    let starts = match start {
        Some(s) => to_i64(s)?,
        None => vec![Some(0); stops.len()],
    };
    let steps: Vec<u64> = match step {
        None if temporal => vec![86_400_000_000_000; stops.len()],
        None => vec![1; stops.len()],
        Some(s) if temporal => interval_nanos(s)?,
        Some(s) => to_i64(s)?
            .into_iter()
            .map(|v| v.map_or(1, i64::unsigned_abs))
            .collect(),
    };
    let mut bytes = 0u64;
    for ((start, stop), step) in starts.iter().zip(&stops).zip(&steps) {
        if let (Some(start), Some(stop)) = (start, stop) {
            let count = start.abs_diff(*stop) / (*step).max(1) + 1;
            bytes = bytes.saturating_add(count.saturating_mul(8));
        }
    }
    Ok(bytes)
}

/// The shortest length of each interval of `a`, in nanoseconds (a month as 28 days).
fn interval_nanos(a: &ArrayRef) -> Result<Vec<u64>> {
    let mdn = cast(
        a,
        &DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
    )?;
    let mdn = mdn.as_primitive::<IntervalMonthDayNanoType>();
    Ok((0..mdn.len())
        .map(|i| {
            if mdn.is_null(i) {
                return 1;
            }
            let v = mdn.value(i);
            let days = i128::from(v.months.unsigned_abs()) * 28 + i128::from(v.days.unsigned_abs());
            let ns = days * 86_400_000_000_000 + i128::from(v.nanoseconds.unsigned_abs());
            u64::try_from(ns).unwrap_or(u64::MAX).max(1)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_amplifier_has_an_estimate() {
        for name in AMPLIFIERS {
            assert!(estimate_of(name).is_some(), "{name}");
        }
    }

    #[test]
    fn series_are_counted_by_their_step() {
        let a: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![0]));
        let b: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1_000_000_000]));
        let step: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1000]));
        assert_eq!(
            series_bytes(&[Arc::clone(&a), Arc::clone(&b)]).unwrap(),
            8 * 1_000_000_001
        );
        assert_eq!(series_bytes(&[a, b, step]).unwrap(), 8 * 1_000_001);
    }
}
