// A node's config form, drawn from its node type's JSON Schema: one field per
// property (text, number, yes/no, a choice for `enum`, a list for arrays of strings,
// JSON for objects and untyped values). Templates (`{{ … }}`) are plain text.

function kind(schema) {
  if (!schema || typeof schema !== "object") return "any";
  if (Array.isArray(schema.enum)) return "enum";
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (type === "array" && schema.items && schema.items.type === "string") return "strings";
  return type || "any";
}

/** Text for a value in a free field: strings as they are, anything else as JSON. */
function show(value) {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A free field's text back to a value: JSON when it reads as JSON, else the text. */
function read(text) {
  const t = text.trim();
  if (t === "") return undefined;
  if (/^[[{"\d-]|^(true|false|null)$/.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

export default function SchemaForm({ idPrefix, schema, value, onChange, problems = {} }) {
  const properties = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const names = Object.keys(properties);
  const set = (name, v) => {
    const next = { ...(value || {}) };
    if (v === undefined || v === "") delete next[name];
    else next[name] = v;
    onChange(next);
  };
  if (names.length === 0) return <p className="hint">This node type has no settings.</p>;
  return (
    <>
      {names.map((name) => {
        const property = properties[name];
        const id = `${idPrefix}-${name}`;
        const current = value ? value[name] : undefined;
        const errors = problems[name] || [];
        const described = [property.description ? `${id}-help` : null, errors.length ? `${id}-error` : null]
          .filter(Boolean)
          .join(" ");
        const common = {
          id,
          "aria-invalid": errors.length ? true : undefined,
          "aria-describedby": described || undefined,
        };
        let field;
        switch (kind(property)) {
          case "enum":
            field = (
              <select {...common} value={current ?? ""} onChange={(e) => set(name, e.target.value || undefined)}>
                <option value="">(default)</option>
                {property.enum.map((option) => (
                  <option key={String(option)} value={option}>{String(option)}</option>
                ))}
              </select>
            );
            break;
          case "boolean":
            field = (
              <input {...common} type="checkbox" checked={Boolean(current)} onChange={(e) => set(name, e.target.checked)} />
            );
            break;
          case "integer":
          case "number":
            field = (
              <input
                {...common}
                type="text"
                inputMode="numeric"
                value={current ?? ""}
                onChange={(e) => {
                  const n = Number(e.target.value);
                  set(name, e.target.value === "" ? undefined : Number.isNaN(n) ? e.target.value : n);
                }}
              />
            );
            break;
          case "strings":
            field = (
              <input
                {...common}
                value={Array.isArray(current) ? current.join(", ") : show(current)}
                onChange={(e) =>
                  set(name, e.target.value === "" ? undefined : e.target.value.split(",").map((s) => s.trim()))
                }
              />
            );
            break;
          case "string":
            field = <input {...common} value={current ?? ""} onChange={(e) => set(name, e.target.value)} />;
            break;
          default:
            field = <textarea {...common} rows={2} value={show(current)} onChange={(e) => set(name, read(e.target.value))} />;
        }
        return (
          <div className="field" key={name}>
            <label htmlFor={id}>
              {name}
              {required.has(name) && <span className="hint"> (required)</span>}
            </label>
            {field}
            {property.description && <p id={`${id}-help`} className="hint">{property.description}</p>}
            {errors.length > 0 && (
              <p id={`${id}-error`} className="error">{errors.join("; ")}</p>
            )}
          </div>
        );
      })}
    </>
  );
}
