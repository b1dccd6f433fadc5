/** A readable line diff (`-` expected, `+` actual, a little context) for mapping test failures. */

export function lineDiff(expected: string, actual: string, context = 2): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  // Longest common subsequence table, from the end.
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const lines: { mark: ' ' | '-' | '+'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ mark: ' ', text: a[i]! });
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      lines.push({ mark: '-', text: a[i]! });
      i++;
    } else {
      lines.push({ mark: '+', text: b[j]! });
      j++;
    }
  }
  const keep = new Set<number>();
  lines.forEach((line, index) => {
    if (line.mark === ' ') return;
    for (let k = Math.max(0, index - context); k <= Math.min(lines.length - 1, index + context); k++)
      keep.add(k);
  });
  const out: string[] = [];
  let last = -1;
  for (const index of [...keep].sort((x, y) => x - y)) {
    if (last !== -1 && index > last + 1) out.push('  …');
    out.push(`${lines[index]!.mark} ${lines[index]!.text}`);
    last = index;
  }
  return out.join('\n');
}
