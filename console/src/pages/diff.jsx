// Two versions of a definition side by side as one line diff of their JSON (longest
// common subsequence of lines; definitions are small).
function lines(value) {
  return JSON.stringify(value, null, 2).split("\n");
}

export function diff(a, b) {
  const n = a.length;
  const m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push([" ", a[i]]);
      i++;
      j++;
    } else if (table[i + 1][j] >= table[i][j + 1]) out.push(["-", a[i++]]);
    else out.push(["+", b[j++]]);
  }
  while (i < n) out.push(["-", a[i++]]);
  while (j < m) out.push(["+", b[j++]]);
  return out;
}

export default function VersionDiff({ before, after, beforeLabel, afterLabel }) {
  const rows = diff(lines(before), lines(after));
  const changed = rows.filter(([k]) => k !== " ").length;
  return (
    <>
      <p className="hint">
        Lines marked − are only in {beforeLabel}, + only in {afterLabel} ({changed} changed).
      </p>
      <pre className="diff" tabIndex={0} aria-label={`Differences between ${beforeLabel} and ${afterLabel}`}>
        {rows.map(([kind, text], i) => (
          <span key={i} className={kind === "+" ? "add" : kind === "-" ? "del" : ""}>
            {kind === " " ? "  " : `${kind === "-" ? "−" : "+"} `}
            {text}
            {"\n"}
          </span>
        ))}
      </pre>
    </>
  );
}
