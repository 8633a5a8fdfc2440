use super::*;

/// Feeds `changes` (at offsets from the start) through the debouncer and returns
/// the offsets, in whole milliseconds, at which it pushed, and what.
async fn pushes(changes: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let start = Instant::now();
    let (input_tx, input) = watch::channel(Arc::new(0));
    let (output, mut output_rx) = watch::channel(Arc::new(0));
    tokio::spawn(run(input, output, Debounce::default()));
    let changes = changes.to_vec();
    tokio::spawn(async move {
        for (at, value) in changes {
            tokio::time::sleep_until(start + Duration::from_millis(at)).await;
            input_tx.send_replace(Arc::new(value));
        }
        // Dropping the sender ends the debouncer, once it had time to push.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut seen = Vec::new();
    while output_rx.changed().await.is_ok() {
        let value = **output_rx.borrow_and_update();
        let at = u64::try_from(start.elapsed().as_millis()).expect("short test");
        seen.push((at, value));
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn a_burst_becomes_one_push_after_the_quiet_period() {
    // Ten changes within 50 ms: one push, 100 ms after the last, with the last value.
    let burst: Vec<(u64, u32)> = (0..10u32).map(|i| (u64::from(i) * 5, i + 1)).collect();
    assert_eq!(pushes(&burst).await, [(145, 10)]);
}

#[tokio::test(start_paused = true)]
async fn separate_changes_are_pushed_separately() {
    assert_eq!(pushes(&[(0, 1), (500, 2)]).await, [(100, 1), (600, 2)]);
}

#[tokio::test(start_paused = true)]
async fn a_trickle_is_pushed_at_least_every_max() {
    // A change every 60 ms for 2.4 s never leaves 100 ms of quiet.
    let trickle: Vec<(u64, u32)> = (0..40u32).map(|i| (u64::from(i) * 60, i + 1)).collect();
    let seen = pushes(&trickle).await;
    let times: Vec<u64> = seen.iter().map(|(at, _)| *at).collect();
    // Bursts start at 0 ms, then at the first change after each push.
    assert_eq!(times, [1000, 2020, 2440]);
    assert_eq!(seen.last(), Some(&(2440, 40)));
}
