// `${VAR}` substitution in configuration values: `${VAR:-default}` falls back when VAR is
// unset or empty, `$${` writes a literal `${`. Secrets stay out of the file this way.

/** The outcome of substituting one string: its new text, or why it cannot be substituted. */
export type Substitution =
  | { ok: true; value: string; variables: string[] }
  | { ok: false; problems: string[] };

const reference = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Replaces every `${…}` in `text` from `env`; lists every missing or malformed reference. */
export function substituteVariables(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): Substitution {
  const problems: string[] = [];
  const variables: string[] = [];
  const value = text.replace(reference, (match: string, body: string | undefined) => {
    if (match === '$${') return match.slice(1);
    if (body === undefined) {
      problems.push(`has "\${" without a closing "}" (write $\${ for a literal \${)`);
      return match;
    }
    const separator = body.indexOf(':-');
    const name = separator === -1 ? body : body.slice(0, separator);
    if (!variableName.test(name)) {
      problems.push(
        `has \${${body}}, which is not a variable reference (names use letters, digits and _; write $\${ for a literal \${)`,
      );
      return match;
    }
    variables.push(name);
    const set = env[name];
    if (separator !== -1) return set === undefined || set === '' ? body.slice(separator + 2) : set;
    if (set === undefined) {
      problems.push(
        `uses \${${name}}, but the environment variable ${name} is not set (set it, or give a default: \${${name}:-value})`,
      );
      return '';
    }
    return set;
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value, variables };
}
