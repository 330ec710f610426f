import { useLayoutEffect, useRef, type FocusEvent, type KeyboardEvent } from 'react';

/**
 * Arrow-key navigation in a list (the "roving tabindex" pattern): only one item of the list
 * is in the Tab order, so Tab leaves the list in one step; ↑/↓ move between items, Home and
 * End jump to the first and last. The item's own controls (`companions`, e.g. a row's menu
 * button) are tabbable only in the current row.
 */
export function useRovingFocus<T extends HTMLElement>(item: string, companions?: string) {
  const ref = useRef<T>(null);
  const current = useRef<HTMLElement | null>(null);

  const items = () => [...(ref.current?.querySelectorAll<HTMLElement>(item) ?? [])];
  const apply = (active: HTMLElement | undefined) => {
    for (const el of items()) {
      const on = el === active;
      el.tabIndex = on ? 0 : -1;
      if (companions) for (const c of el.closest('li')?.querySelectorAll<HTMLElement>(companions) ?? []) c.tabIndex = on ? 0 : -1;
    }
  };

  // After every render (rows come, go and move): keep exactly one item tabbable.
  useLayoutEffect(() => {
    const all = items();
    const active = all.find((el) => el === current.current) ?? all.find((el) => el.getAttribute('aria-current') === 'page') ?? all[0];
    apply(active);
  });

  const onFocus = (e: FocusEvent<T>) => {
    const row = (e.target as HTMLElement).closest('li');
    const hit = items().find((el) => el === e.target || (row && el.closest('li') === row));
    if (hit && hit !== current.current) {
      current.current = hit;
      apply(hit);
    }
  };

  const onKeyDown = (e: KeyboardEvent<T>) => {
    const all = items();
    const i = all.indexOf(e.target as HTMLElement);
    if (i < 0 || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const next = e.key === 'ArrowDown' ? Math.min(i + 1, all.length - 1) : e.key === 'ArrowUp' ? Math.max(i - 1, 0) : e.key === 'Home' ? 0 : e.key === 'End' ? all.length - 1 : -1;
    if (next < 0) return;
    e.preventDefault();
    all[next]!.focus();
  };

  return { ref, onFocus, onKeyDown };
}
