//! Removing hidden values from Arrow arrays, byte for byte.
//!
//! Clearing a validity bit does not remove a value: the bytes stay in the data buffer, and
//! Arrow IPC (Flight, exports) sends buffers as they are, so any client reads them back with
//! `buffers()`. A dictionary column carries its whole dictionary and a view column its whole
//! data buffers whatever rows are kept. [`scrub`] rebuilds an array so that a hidden or null
//! slot is absent from every buffer:
//!
//! - fixed-width values (integers, decimals, dates, booleans, fixed-size binary) are zeroed;
//! - variable-width values (`Utf8`, `Binary` and their large forms) are left out of the data
//!   buffer and the offsets rebuilt;
//! - nested arrays (structs, lists) are rebuilt the same way, their children with them;
//! - view arrays (`Utf8View`, `BinaryView`): a hidden slot's view (which holds up to 12
//!   bytes inline, or a 4-byte prefix) is zeroed and the data buffers rebuilt from the
//!   visible views only;
//! - dictionary arrays: hidden keys are zeroed and the dictionary rebuilt from the values
//!   that visible keys still reference (the dictionary is kept rather than hydrated, so the
//!   column keeps the type its definition declares and its wire size; `docs/security.md`).
//!
//! [`compact`] is the same for an array whose rows were filtered or taken (no slot hidden,
//! but a dictionary or view array still carries the values of the rows left out).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, GenericByteViewArray, MutableArrayData,
    PrimitiveArray, downcast_dictionary_array, make_array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowDictionaryKeyType, ByteViewType, DataType};
use arrow::error::ArrowError;
use arrow_select::dictionary::garbage_collect_dictionary;

/// `col` with every slot that is null, or outside `visible` (when given), rebuilt as an
/// empty null: no byte of its value is left in any buffer of the result. Slots outside
/// `visible` read as null.
pub(crate) fn scrub(
    col: &ArrayRef,
    visible: Option<&BooleanBuffer>,
) -> Result<ArrayRef, ArrowError> {
    let nulls = match visible {
        None => col.logical_nulls(),
        Some(v) => NullBuffer::union(
            col.logical_nulls().as_ref(),
            Some(&NullBuffer::new(v.clone())),
        ),
    };
    match col.data_type() {
        DataType::Dictionary(..) => scrub_dictionary(col, nulls),
        DataType::Utf8View => Ok(Arc::new(scrub_views(col.as_string_view(), nulls)?)),
        DataType::BinaryView => Ok(Arc::new(scrub_views(col.as_binary_view(), nulls)?)),
        _ => rebuild(col, nulls.as_ref()),
    }
}

/// Whether a column of this type may carry values of rows left out of it (a dictionary's
/// values, a view array's data buffers) after a filter, a take or a slice.
pub(crate) fn needs_compaction(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(..) | DataType::Utf8View | DataType::BinaryView => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => needs_compaction(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| needs_compaction(f.data_type())),
        DataType::RunEndEncoded(_, v) => needs_compaction(v.data_type()),
        DataType::Union(fs, _) => fs.iter().any(|(_, f)| needs_compaction(f.data_type())),
        _ => false,
    }
}

/// `col` (filtered, taken or sliced) without the values of rows that are no longer in it:
/// dictionaries and view buffers rebuilt from the slots it has. Other types are returned as
/// they are (filter and take already rebuild them; the IPC writer trims a slice's buffers).
pub(crate) fn compact(col: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    if needs_compaction(col.data_type()) {
        scrub(col, None)
    } else {
        Ok(Arc::clone(col))
    }
}

/// Rebuild `col` with its valid runs copied and every other slot appended as an empty null
/// (zeros for fixed-width buffers, a repeated offset for variable-width ones, empty nulls in
/// children).
fn rebuild(col: &ArrayRef, nulls: Option<&NullBuffer>) -> Result<ArrayRef, ArrowError> {
    let Some(nulls) = nulls.filter(|n| n.null_count() > 0) else {
        return Ok(Arc::clone(col));
    };
    let data = col.to_data();
    let mut out = MutableArrayData::new(vec![&data], true, col.len());
    let mut at = 0;
    for (start, end) in nulls.inner().set_slices() {
        if start > at {
            out.try_extend_nulls(start - at)?;
        }
        out.try_extend(0, start, end)?;
        at = end;
    }
    if at < col.len() {
        out.try_extend_nulls(col.len() - at)?;
    }
    Ok(make_array(out.freeze()))
}

/// A view array whose hidden or null views are zero and whose data buffers hold only what
/// the remaining views point to.
fn scrub_views<T: ByteViewType + ?Sized>(
    a: &GenericByteViewArray<T>,
    nulls: Option<NullBuffer>,
) -> Result<GenericByteViewArray<T>, ArrowError> {
    let nulls = nulls.filter(|n| n.null_count() > 0);
    let views: ScalarBuffer<u128> = match &nulls {
        None => a.views().clone(),
        Some(n) => a
            .views()
            .iter()
            .zip(n.iter())
            .map(|(&v, valid)| if valid { v } else { 0 })
            .collect(),
    };
    let zeroed = GenericByteViewArray::<T>::try_new(views, a.data_buffers().to_vec(), nulls)?;
    // `gc` copies the bytes every view points to (a zero view points nowhere) into new
    // buffers; a view array without out-of-line values keeps none.
    Ok(zeroed.gc())
}

/// A dictionary array whose hidden or null keys are zero and whose dictionary holds only
/// the values its remaining keys reference (themselves scrubbed).
fn scrub_dictionary(col: &ArrayRef, nulls: Option<NullBuffer>) -> Result<ArrayRef, ArrowError> {
    downcast_dictionary_array!(
        col => scrub_dictionary_of(col, nulls),
        t => Err(ArrowError::InvalidArgumentError(format!("not a dictionary: {t}")))
    )
}

fn scrub_dictionary_of<K: ArrowDictionaryKeyType>(
    dict: &DictionaryArray<K>,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, ArrowError> {
    // The keys with the dictionary's logical nulls (null keys and keys of null values).
    let keys: ArrayRef = Arc::new(dict.keys().clone());
    let keys = rebuild(&keys, nulls.as_ref())?;
    let keys = keys.as_primitive::<K>().clone();
    let keys = match nulls.filter(|n| n.null_count() > 0) {
        // `rebuild` kept the keys' own validity; the slots hidden here must be null too.
        Some(n) if keys.null_count() != n.null_count() => {
            PrimitiveArray::<K>::try_new(keys.values().clone(), Some(n))?
        }
        _ => keys,
    };
    let gc = garbage_collect_dictionary(&DictionaryArray::<K>::try_new(
        keys,
        Arc::clone(dict.values()),
    )?)?;
    let values = scrub(gc.values(), None)?;
    Ok(Arc::new(DictionaryArray::<K>::try_new(
        gc.keys().clone(),
        values,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BinaryViewArray, Int32Array, Int64Array, ListArray, StringArray, StringViewArray,
        StructArray,
    };
    use arrow::datatypes::{Field, Int32Type, Int64Type};

    /// Every byte of every buffer of `a` and its children, concatenated.
    fn all_bytes(a: &dyn Array) -> Vec<u8> {
        fn walk(d: &arrow::array::ArrayData, out: &mut Vec<u8>) {
            for b in d.buffers() {
                out.extend_from_slice(b.as_slice());
            }
            for c in d.child_data() {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        walk(&a.to_data(), &mut out);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn bits(v: &[bool]) -> BooleanBuffer {
        BooleanBuffer::from(v.to_vec())
    }

    #[test]
    fn fixed_width_hidden_slots_are_zeroed() {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![
            0x1122_3344_5566_7788,
            7,
            0x0102_0304_0506_0708,
        ]));
        let out = scrub(&col, Some(&bits(&[false, true, false]))).unwrap();
        let out = out.as_primitive::<Int64Type>();
        assert_eq!(out.values().as_ref(), &[0, 7, 0]);
        assert!(out.is_null(0) && out.is_valid(1) && out.is_null(2));
    }

    #[test]
    fn strings_hidden_values_leave_the_data_buffer() {
        let col: ArrayRef = Arc::new(StringArray::from(vec![
            Some("secret-one"),
            Some("shown"),
            None,
            Some("secret-two"),
        ]));
        let out = scrub(&col, Some(&bits(&[false, true, true, false]))).unwrap();
        let bytes = all_bytes(out.as_ref());
        assert!(!contains(&bytes, b"secret"));
        let s = out.as_string::<i32>();
        assert_eq!(s.value(1), "shown");
        assert_eq!(s.null_count(), 3);
    }

    #[test]
    fn views_hidden_values_leave_views_and_buffers() {
        let long = "a-long-secret-value-over-twelve-bytes";
        let col: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("shortsecret"),
            Some(long),
            Some("visible-but-long-enough-to-be-out-of-line"),
        ]));
        let out = scrub(&col, Some(&bits(&[false, false, true]))).unwrap();
        let bytes = all_bytes(out.as_ref());
        assert!(!contains(&bytes, b"shortsecret"));
        assert!(!contains(&bytes, b"secret-value"));
        assert_eq!(
            out.as_string_view().value(2),
            "visible-but-long-enough-to-be-out-of-line"
        );
        let bin: ArrayRef = Arc::new(BinaryViewArray::from(vec![
            b"binary-secret-bytes".as_slice(),
            b"ok",
        ]));
        let out = scrub(&bin, Some(&bits(&[false, true]))).unwrap();
        assert!(!contains(&all_bytes(out.as_ref()), b"binary-secret"));
    }

    #[test]
    fn dictionary_keeps_only_visible_values() {
        let dict: DictionaryArray<Int32Type> = vec!["hidden-a", "seen", "hidden-b", "seen"]
            .into_iter()
            .collect();
        let col: ArrayRef = Arc::new(dict);
        let out = scrub(&col, Some(&bits(&[false, true, false, true]))).unwrap();
        assert!(!contains(&all_bytes(out.as_ref()), b"hidden"));
        let d = out.as_dictionary::<Int32Type>();
        assert_eq!(d.values().len(), 1);
        assert_eq!(d.null_count(), 2);
        // After a filter the dictionary still holds the rows left out; compact drops them.
        let filtered = arrow::compute::filter(
            &col,
            &arrow::array::BooleanArray::from(vec![false, true, false, true]),
        )
        .unwrap();
        assert!(contains(&all_bytes(filtered.as_ref()), b"hidden"));
        let compacted = compact(&filtered).unwrap();
        assert!(!contains(&all_bytes(compacted.as_ref()), b"hidden"));
        assert_eq!(compacted.as_dictionary::<Int32Type>().keys().len(), 2);
    }

    #[test]
    fn nested_children_are_rebuilt() {
        let names: ArrayRef = Arc::new(StringArray::from(vec!["nested-secret", "fine"]));
        let ages: ArrayRef = Arc::new(Int32Array::from(vec![0x0ABB_CCDD, 5]));
        let col: ArrayRef = Arc::new(StructArray::from(vec![
            (Arc::new(Field::new("n", DataType::Utf8, true)), names),
            (Arc::new(Field::new("a", DataType::Int32, true)), ages),
        ]));
        let out = scrub(&col, Some(&bits(&[false, true]))).unwrap();
        let bytes = all_bytes(out.as_ref());
        assert!(!contains(&bytes, b"nested-secret"));
        assert!(!contains(&bytes, &0x0ABB_CCDDi32.to_le_bytes()));

        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(0x0EAD_BEEF), Some(1)]),
            Some(vec![Some(2)]),
        ]));
        let out = scrub(&list, Some(&bits(&[false, true]))).unwrap();
        assert!(!contains(
            &all_bytes(out.as_ref()),
            &0x0EAD_BEEFi32.to_le_bytes()
        ));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn nothing_hidden_is_the_same_array() {
        let col: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let out = scrub(&col, Some(&bits(&[true, true, true]))).unwrap();
        assert!(Arc::ptr_eq(&col, &out));
    }
}
