//! Work on every item on one thread per CPU, results consumed in the
//! items' order on the calling thread as they become ready.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::shape::Shaper;

/// `work` each of `items` (each worker with its own [`Shaper`]), and hand
/// the results to `consume` in order. The first error in order ends it:
/// nothing after it is consumed, the workers stop at their next item.
pub fn in_order<T, R, E>(
    items: &[T],
    work: impl Fn(&mut Shaper, &T) -> Result<R, E> + Sync,
    mut consume: impl FnMut(R),
) -> Result<(), E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // Bounded: workers run only a little ahead of the writer.
        let (sender, receiver) = mpsc::sync_channel::<(usize, Result<R, E>)>(4 * workers);
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || {
                let mut shaper = super::pdf::shaper();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        break;
                    };
                    // The receiver is gone after an error: stop.
                    if sender.send((index, work(&mut shaper, item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut waiting = BTreeMap::new();
        let mut wanted = 0;
        for (index, result) in receiver {
            waiting.insert(index, result);
            while let Some(result) = waiting.remove(&wanted) {
                match result {
                    Ok(value) => consume(value),
                    // Leaving drops the receiver, which ends the workers.
                    Err(e) => {
                        next.store(items.len(), Ordering::Relaxed);
                        return Err(e);
                    }
                }
                wanted += 1;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_and_the_first_error_in_order_wins() {
        let items: Vec<usize> = (0..500).collect();
        let mut seen = Vec::new();
        in_order(
            &items,
            |_, i| {
                // Uneven work, so workers finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((*i as u64 * 7) % 50));
                Ok::<_, String>(i * 2)
            },
            |r| seen.push(r),
        )
        .unwrap();
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());

        let mut seen = Vec::new();
        let err = in_order(
            &items,
            |_, i| match *i {
                300 | 200 => Err(format!("item {i}")),
                _ => Ok(*i),
            },
            |r| seen.push(r),
        )
        .unwrap_err();
        assert_eq!(err, "item 200");
        assert_eq!(seen, (0..200).collect::<Vec<_>>());

        let mut none = 0;
        in_order(&[] as &[usize], |_, _| Ok::<_, ()>(()), |_| none += 1).unwrap();
        assert_eq!(none, 0);
    }
}
