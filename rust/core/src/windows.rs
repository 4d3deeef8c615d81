//! Counting over trailing windows, for the detectors (Python's `icmpscope.detect.base`): per
//! row, how many rows of its group fall within `(t - window, t]` (or their sum of a column, or
//! their distinct items); and the episodes (runs of such hot times) the rows belong to. One
//! pass over rows in time order with
//! a queue of the window's rows and per-group counters, as Snort's and Suricata's thresholds
//! count: polars needs sorts by group, as-of joins and group-bys over millions of groups for
//! the same answer (tests hold the polars formulation as the reference). And before counting,
//! which groups may reach a count at all (`at_least`: hashed counters that fit in the cache).
//!
//! Groups and items are `u64` ids (a Categorical's codes, a pair of them, a dense rank); a null
//! group takes no part, a null item counts for nothing. Times are nanoseconds.
use std::collections::VecDeque;

use arrow_array::{Array, BooleanArray, UInt32Array, UInt64Array};
use rustc_hash::FxHashMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("the window must be positive, got {0} ns")]
    BadWindow(i64),
    #[error("{what}: {got} values where the times have {expected}")]
    LengthMismatch { what: &'static str, got: usize, expected: usize },
    #[error("{what}: times must be in ascending order (row {row} is earlier than the row before)")]
    Unsorted { what: &'static str, row: usize },
}

fn check(what: &'static str, ts: &[i64], ids: &[&UInt64Array], window: i64) -> Result<(), WindowError> {
    if window <= 0 {
        return Err(WindowError::BadWindow(window));
    }
    if let Some(bad) = ids.iter().find(|a| a.len() != ts.len()) {
        return Err(WindowError::LengthMismatch { what, got: bad.len(), expected: ts.len() });
    }
    match ts.windows(2).position(|w| w[1] < w[0]) {
        Some(row) => Err(WindowError::Unsorted { what, row: row + 1 }),
        None => Ok(()),
    }
}

fn id(array: &UInt64Array, row: usize) -> Option<u64> {
    array.is_valid(row).then(|| array.value(row))
}

/// The end of the run of rows from `start` that share its time.
fn same_time(ts: &[i64], start: usize) -> usize {
    let t = ts[start];
    start + ts[start..].iter().take_while(|&&u| u == t).count()
}

/// What a window counts of its group's rows.
#[derive(Clone, Copy)]
pub enum Counted<'a> {
    Rows,
    /// The sum of a column (a null adds nothing), e.g. bytes.
    Sum(&'a UInt64Array),
    /// Distinct non-null values of a column.
    Distinct(&'a UInt64Array),
}

/// Per row of rows in time order: what `counted` says of its group's rows within the trailing
/// window `(t - window, t]`. Rows of equal times all see each other. Null where the group is
/// null.
pub fn trailing_counts(groups: &UInt64Array, counted: Counted<'_>, ts: &[i64], window: i64) -> Result<UInt64Array, WindowError> {
    let column = match counted {
        Counted::Rows => None,
        Counted::Sum(c) | Counted::Distinct(c) => Some(c),
    };
    let mut arrays = vec![groups];
    arrays.extend(column);
    check("trailing_counts", ts, &arrays, window)?;
    // The rows counted, oldest first, to leave the window in turn.
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut active: FxHashMap<u64, u64> = FxHashMap::default();
    // Distinct: each (group, value)'s latest time; a value leaves when its latest row does.
    let mut latest: FxHashMap<(u64, u64), i64> = FxHashMap::default();
    let mut out: Vec<Option<u64>> = Vec::with_capacity(ts.len());
    let mut start = 0;
    while start < ts.len() {
        let end = same_time(ts, start);
        let t = ts[start];
        while let Some(&row) = queue.front() {
            // Inside (t - window, t] stays; below the smallest time, everything is inside.
            if t.checked_sub(window).is_none_or(|start| ts[row] > start) {
                break;
            }
            queue.pop_front();
            let Some(group) = id(groups, row) else { continue };
            let leaves = match counted {
                Counted::Rows => 1,
                Counted::Sum(values) => id(values, row).unwrap_or(0),
                // Its latest row, once (a value seen twice at one time is queued twice).
                Counted::Distinct(values) => u64::from(id(values, row).is_some_and(|value| {
                    let key = (group, value);
                    let gone = latest.get(&key) == Some(&ts[row]);
                    if gone {
                        latest.remove(&key);
                    }
                    gone
                })),
            };
            if let Some(n) = active.get_mut(&group) {
                *n = n.saturating_sub(leaves);
            }
        }
        for row in start..end {
            let Some(group) = id(groups, row) else { continue };
            let enters = match counted {
                Counted::Rows => 1,
                Counted::Sum(values) => id(values, row).unwrap_or(0),
                Counted::Distinct(values) => match id(values, row) {
                    Some(value) => u64::from(latest.insert((group, value), t).is_none()),
                    None => continue,
                },
            };
            let n = active.entry(group).or_insert(0);
            *n = n.saturating_add(enters);
            queue.push_back(row);
        }
        out.extend((start..end).map(|row| id(groups, row).map(|g| active.get(&g).copied().unwrap_or(0))));
        start = end;
    }
    Ok(UInt64Array::from(out))
}

struct Span {
    group: u64,
    first: i64,
    last: i64,
    // The group's next span (spans of a group are made in time order).
    next: Option<usize>,
}

/// The episode of each row (null: none). An episode of a group is a run of its hot times (both
/// in time order) with no gap longer than `window`, and holds the group's rows from one window
/// before its first hot time (exclusive) to its last (inclusive). Episodes are numbered from 1
/// in the order they start (by group id where two start at once), unique across groups.
pub fn episodes(hot_groups: &UInt64Array, hot_ts: &[i64], groups: &UInt64Array, ts: &[i64], window: i64) -> Result<UInt32Array, WindowError> {
    check("episodes (hot times)", hot_ts, &[hot_groups], window)?;
    check("episodes (rows)", ts, &[groups], window)?;
    let mut spans: Vec<Span> = Vec::new();
    // Per group: its first span, and the one its latest hot time belongs to.
    let mut of_group: FxHashMap<u64, (usize, usize)> = FxHashMap::default();
    for (row, &t) in hot_ts.iter().enumerate() {
        let Some(group) = id(hot_groups, row) else { continue };
        match of_group.get_mut(&group) {
            Some((_, current)) if t.saturating_sub(spans[*current].last) <= window => spans[*current].last = t,
            found => {
                let new = spans.len();
                spans.push(Span { group, first: t, last: t, next: None });
                match found {
                    Some((_, current)) => {
                        spans[*current].next = Some(new);
                        *current = new;
                    }
                    None => {
                        of_group.insert(group, (new, new));
                    }
                }
            }
        }
    }
    // Numbers in the order of (first, group): spans are made in time order already.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&s| (spans[s].first, spans[s].group));
    let mut number = vec![0u32; spans.len()];
    for (n, &s) in order.iter().enumerate() {
        number[s] = n as u32 + 1;
    }
    // Each group's cursor moves forward through its spans as the rows' times do.
    let mut cursor: FxHashMap<u64, usize> = of_group.into_iter().map(|(g, (first, _))| (g, first)).collect();
    let out = (0..ts.len()).map(|row| {
        let group = id(groups, row)?;
        let at = cursor.get_mut(&group)?;
        let t = ts[row];
        while spans[*at].last < t {
            *at = spans[*at].next?;
        }
        let span = &spans[*at];
        span.first.checked_sub(window).is_none_or(|start| t > start).then_some(number[*at])
    });
    Ok(out.collect())
}

/// Per row: whether its group may total at least `least` (rows, or with `weights` their sum;
/// a null weight adds nothing): true for every row of each group that does, and for a few
/// others. Groups are hashed into one counter each, so groups that share a counter only
/// over-count (and counters saturate). A filter before a group-by: a capture's millions of
/// one- or two-packet pairs cannot reach a threshold of ten, and counting them exactly is a
/// hash table of millions of groups (polars' or ours: ~60 ns a row, cache misses), where a
/// counter in the cache is a few ns. A null group counts as one group.
pub fn at_least(groups: &UInt64Array, weights: Option<&UInt64Array>, least: u64) -> Result<BooleanArray, WindowError> {
    if let Some(w) = weights.filter(|w| w.len() != groups.len()) {
        return Err(WindowError::LengthMismatch { what: "at_least (weights)", got: w.len(), expected: groups.len() });
    }
    // Up to 2^21 counters (8 MiB, within the L3 cache): a table twice that size took four
    // times as long over 5M rows (cache and TLB misses), for a few thousand fewer rows kept.
    let bits = groups.len().clamp(64, 1 << 21).next_power_of_two().trailing_zeros();
    let slot = |row: usize| -> usize {
        let group = id(groups, row).unwrap_or(u64::MAX);
        // Fibonacci hashing: the top bits of the product spread consecutive codes.
        (group.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    };
    let weight = |row: usize| weights.map_or(1, |w| id(w, row).unwrap_or(0));
    let least = u32::try_from(least).unwrap_or(u32::MAX);
    let mut totals = vec![0u32; 1 << bits];
    for row in 0..groups.len() {
        let total = &mut totals[slot(row)];
        *total = total.saturating_add(u32::try_from(weight(row)).unwrap_or(u32::MAX));
    }
    Ok((0..groups.len()).map(|row| Some(totals[slot(row)] >= least)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    enum Kind {
        Rows,
        Sum,
        Distinct,
    }

    /// By definition, quadratic: rows, sums or distinct values of the group in (t - w, t].
    fn counts_by_definition(groups: &[Option<u64>], values: &[Option<u64>], kind: Kind, ts: &[i64], w: i64) -> Vec<Option<u64>> {
        (0..ts.len()).map(|r| {
            let g = groups[r]?;
            let inside = (0..ts.len()).filter(|&o| groups[o] == Some(g) && ts[o] > ts[r] - w && ts[o] <= ts[r]);
            Some(match kind {
                Kind::Rows => inside.count() as u64,
                Kind::Sum => inside.filter_map(|o| values[o]).sum(),
                Kind::Distinct => {
                    let mut seen: Vec<u64> = inside.filter_map(|o| values[o]).collect();
                    seen.sort();
                    seen.dedup();
                    seen.len() as u64
                }
            })
        }).collect()
    }

    fn rows() -> impl Strategy<Value = (Vec<Option<u64>>, Vec<Option<u64>>, Vec<i64>, i64)> {
        (0usize..60, 1i64..20).prop_flat_map(|(n, w)| (
            prop::collection::vec(prop::option::weighted(0.9, 0u64..4), n),
            prop::collection::vec(prop::option::weighted(0.9, 0u64..5), n),
            prop::collection::vec(0i64..6, n).prop_map(|steps| steps.iter().scan(0, |t, s| { *t += s; Some(*t) }).collect()),
            Just(w),
        ))
    }

    proptest! {
        #[test]
        fn counts_match_the_definition((groups, items, ts, w) in rows()) {
            let g = UInt64Array::from(groups.clone());
            let i = UInt64Array::from(items.clone());
            let rows: Vec<Option<u64>> = trailing_counts(&g, Counted::Rows, &ts, w).unwrap().iter().collect();
            prop_assert_eq!(rows, counts_by_definition(&groups, &items, Kind::Rows, &ts, w));
            let sums: Vec<Option<u64>> = trailing_counts(&g, Counted::Sum(&i), &ts, w).unwrap().iter().collect();
            prop_assert_eq!(sums, counts_by_definition(&groups, &items, Kind::Sum, &ts, w));
            let distinct: Vec<Option<u64>> = trailing_counts(&g, Counted::Distinct(&i), &ts, w).unwrap().iter().collect();
            prop_assert_eq!(distinct, counts_by_definition(&groups, &items, Kind::Distinct, &ts, w));
        }

        #[test]
        fn at_least_keeps_every_row_of_each_group_that_reaches_it((groups, items, _ts, w) in rows()) {
            let least = w as u64 % 6;
            let g = UInt64Array::from(groups.clone());
            let i = UInt64Array::from(items.clone());
            for weights in [None, Some(&i)] {
                let kept = at_least(&g, weights, least).unwrap();
                prop_assert_eq!(kept.null_count(), 0);
                for r in 0..groups.len() {
                    let total: u64 = (0..groups.len()).filter(|&o| groups[o] == groups[r])
                        .map(|o| weights.map_or(1, |_| items[o].unwrap_or(0))).sum();
                    if total >= least {
                        prop_assert!(kept.value(r), "row {} of a group totalling {}", r, total);
                    }
                }
            }
        }

        #[test]
        fn episodes_match_the_definition((groups, hot, ts, w) in rows()) {
            // Hot times: the rows whose item is even (any subset will do).
            let picked: Vec<usize> = (0..ts.len()).filter(|&r| hot[r].is_some_and(|h| h % 2 == 0)).collect();
            let hot_groups: Vec<Option<u64>> = picked.iter().map(|&r| groups[r]).collect();
            let hot_ts: Vec<i64> = picked.iter().map(|&r| ts[r]).collect();
            let got: Vec<Option<u32>> = episodes(&UInt64Array::from(hot_groups.clone()), &hot_ts,
                                                 &UInt64Array::from(groups.clone()), &ts, w).unwrap().iter().collect();
            // By definition: the group's hot times sorted and cut where a gap exceeds w make
            // its spans; a row is in the span with first - w < t <= last, if any.
            let span_of = |r: usize| -> Option<(u64, i64)> {
                let g = groups[r]?;
                let mut mine: Vec<i64> = (0..hot_ts.len()).filter(|&h| hot_groups[h] == Some(g)).map(|h| hot_ts[h]).collect();
                mine.sort();
                let mut spans: Vec<(i64, i64)> = Vec::new();
                for h in mine {
                    match spans.last_mut() {
                        Some(s) if h - s.1 <= w => s.1 = h,
                        _ => spans.push((h, h)),
                    }
                }
                spans.into_iter().find(|&(first, last)| first - w < ts[r] && ts[r] <= last).map(|(first, _)| (g, first))
            };
            for r in 0..ts.len() {
                prop_assert_eq!(got[r].is_some(), span_of(r).is_some(), "row {}", r);
                for o in 0..ts.len() {
                    if got[r].is_some() && got[o].is_some() {
                        prop_assert_eq!(got[r] == got[o], span_of(r) == span_of(o), "rows {} and {}", r, o);
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_times_neither_overflow_nor_panic() {
        let g = UInt64Array::from(vec![1, 1, 1]);
        let ts = [i64::MIN, 0, i64::MAX];
        let counts: Vec<Option<u64>> = trailing_counts(&g, Counted::Sum(&UInt64Array::from(vec![u64::MAX, u64::MAX, 1])), &ts, i64::MAX)
            .unwrap().iter().collect();
        // Each window holds its own row only: (t - MAX, t] leaves out the earlier ones.
        assert_eq!(counts, vec![Some(u64::MAX), Some(u64::MAX), Some(1)]);
        let found: Vec<Option<u32>> = episodes(&g, &ts, &g, &ts, 1).unwrap().iter().collect();
        assert_eq!(found, vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let g = UInt64Array::from(vec![1, 1]);
        assert_eq!(trailing_counts(&g, Counted::Rows, &[2, 1], 5), Err(WindowError::Unsorted { what: "trailing_counts", row: 1 }));
        assert_eq!(trailing_counts(&g, Counted::Rows, &[1], 5).unwrap_err(),
                   WindowError::LengthMismatch { what: "trailing_counts", got: 2, expected: 1 });
        assert_eq!(trailing_counts(&g, Counted::Sum(&UInt64Array::from(vec![1])), &[1, 2], 5).unwrap_err(),
                   WindowError::LengthMismatch { what: "trailing_counts", got: 1, expected: 2 });
        assert_eq!(trailing_counts(&g, Counted::Rows, &[1, 2], 0), Err(WindowError::BadWindow(0)));
        assert!(episodes(&g, &[1, 2], &g, &[3, 1], 5).is_err());
        assert_eq!(at_least(&g, Some(&UInt64Array::from(vec![1])), 1).unwrap_err(),
                   WindowError::LengthMismatch { what: "at_least (weights)", got: 1, expected: 2 });
    }

    #[test]
    fn at_least_leaves_out_the_small_groups_of_consecutive_codes() {
        // Codes as a Categorical numbers its addresses: one pair of ten rows among a hundred
        // thousand pairs of one or two rows; the hashing spreads them over their own counters.
        let mut groups: Vec<u64> = (0..100_000).flat_map(|g| std::iter::repeat_n(g, 1 + (g % 2) as usize)).collect();
        groups.extend(std::iter::repeat_n(7u64 << 32 | 3, 10));
        let kept = at_least(&UInt64Array::from(groups.clone()), None, 10).unwrap();
        let rows: Vec<u64> = (0..groups.len()).filter(|&r| kept.value(r)).map(|r| groups[r]).collect();
        assert_eq!(rows, vec![7u64 << 32 | 3; 10]);
        let weighted = at_least(&UInt64Array::from(vec![Some(1), None, Some(1)]), Some(&UInt64Array::from(vec![Some(4), Some(9), None])), 5).unwrap();
        assert_eq!(weighted.iter().collect::<Vec<_>>(), vec![Some(false), Some(true), Some(false)]);
    }
}
