/** See tree.mjs: `spec` (a public entry point such as '@magpie/server') as the checkout at `tree` resolves it. */
export function importFromTree(tree: string, spec: string): Promise<any>;
