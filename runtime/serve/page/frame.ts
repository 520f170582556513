// Drawing at most once per animation frame: live points may arrive many times a frame (eight
// charts, a burst after a reconnect), but each chart or card redraws once, in the next frame.
const pending = new Set<() => void>();
let scheduled = false;

/** Runs `draw` in the next frame; the same function asked for twice runs once. */
export function nextFrame(draw: () => void): void {
  pending.add(draw);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const now = [...pending];
    pending.clear();
    for (const d of now) d();
  });
}

/** Forgets a draw asked for (its chart is gone). */
export function cancelFrame(draw: () => void): void {
  pending.delete(draw);
}
