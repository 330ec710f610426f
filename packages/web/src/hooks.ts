import { useEffect, useState, useSyncExternalStore } from 'react';

/** Bind a view model from @magpie/sdk (subscribe/getSnapshot). */
export function useVM<S>(vm: { subscribe(l: () => void): () => void; getSnapshot(): S }): S {
  return useSyncExternalStore(vm.subscribe, vm.getSnapshot);
}

/**
 * Create a view model for as long as `key` stays the same; disposed when the key changes
 * or the component unmounts. Null until the effect has run.
 */
export function useOwnedVM<T extends { dispose(): void }>(make: () => T, key: string): T | null {
  const [held, setHeld] = useState<{ key: string; vm: T } | null>(null);
  useEffect(() => {
    const vm = make();
    setHeld({ key, vm });
    return () => vm.dispose();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return held && held.key === key ? held.vm : null;
}

export function useMediaQuery(q: string): boolean {
  return useSyncExternalStore(
    (l) => {
      const m = matchMedia(q);
      m.addEventListener('change', l);
      return () => m.removeEventListener('change', l);
    },
    () => matchMedia(q).matches,
  );
}
