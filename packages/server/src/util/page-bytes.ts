/**
 * The longest prefix of `items` whose JSON stays within `budget` bytes — at least one item,
 * so paging always advances. Reply pages (history, sync, the conversation list) are cut with
 * it: a page of 200 messages of 16 KiB was 3 MB, and 100 such requests of 93 bytes each held
 * hundreds of MB. Sizes are measured in UTF-16 units of the JSON text, a close estimate of bytes.
 */
export function fitToBytes<T>(items: T[], budget: number): { items: T[]; trimmed: boolean } {
  let used = 0;
  for (let i = 0; i < items.length; i++) {
    used += JSON.stringify(items[i]).length + 1;
    if (used > budget && i > 0) return { items: items.slice(0, i), trimmed: true };
  }
  return { items, trimmed: false };
}
