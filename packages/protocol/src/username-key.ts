/** The key a username is unique by and looked up with at login: NFKC, then case-folded. `Alice` and `ａｌｉｃｅ` are one user. */
export function usernameKey(username: string): string {
  return username.normalize('NFKC').toLowerCase();
}
