// Label and field selectors as kube-apiserver parses them (k8s.io/apimachinery/pkg/labels and /fields).
// Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a`, `a>1`, `a<1`, joined by commas.
// Fields: `f=v`, `f==v`, `f!=v` joined by commas, with `\,` `\=` `\\` escapes. Which fields a resource can
// be selected by is the resource's business (resources.ts); here a field is only a name and a value.
import { badRequest } from './errors.ts';

export type LabelOperator = 'in' | 'notin' | 'exists' | 'doesnotexist' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Whether `key` is a valid label (or annotation) key: an optional DNS-subdomain prefix and `/`, then a name. */
export function isQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !PREFIX.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && NAME.test(value));
}

// The lexer's tokens: operators and parentheses, or an identifier (anything else up to a space or operator).
type Token = { kind: 'op'; text: string } | { kind: 'id'; text: string } | { kind: 'end' };

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if ('(),'.includes(c)) {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else if ('=!<>'.includes(c)) {
      const two = text.slice(i, i + 2);
      const op = two === '==' || two === '!=' ? two : c;
      tokens.push({ kind: 'op', text: op });
      i += op.length;
    } else {
      let j = i;
      while (j < text.length && !' \t(),=!<>'.includes(text[j]!)) j++;
      tokens.push({ kind: 'id', text: text.slice(i, j) });
      i = j;
    }
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

export function parseLabelSelector(text: string): LabelRequirement[] {
  const tokens = lex(text);
  let at = 0;
  const peek = () => tokens[at]!;
  const fail = (why: string) => badRequest(`unable to parse requirement: found '${describe(peek())}', ${why} (selector "${text}")`);
  const identifier = (what: string): string => {
    const t = peek();
    if (t.kind !== 'id') throw fail(`expected ${what}`);
    at++;
    return t.text;
  };
  const isOp = (t: Token, ...ops: string[]) => t.kind === 'op' && ops.includes(t.text);
  const atEndOfTerm = () => peek().kind === 'end' || isOp(peek(), ',');

  const requirements: LabelRequirement[] = [];
  if (peek().kind === 'end') return requirements;
  for (;;) {
    let requirement: LabelRequirement;
    if (isOp(peek(), '!')) {
      at++;
      requirement = { key: identifier('a key after "!"'), operator: 'doesnotexist', values: [] };
    } else {
      const key = identifier('a key');
      const t = peek();
      if (atEndOfTerm()) {
        requirement = { key, operator: 'exists', values: [] };
      } else if (isOp(t, '=', '==', '!=')) {
        at++;
        const value = atEndOfTerm() ? '' : identifier('a value');
        requirement = { key, operator: t.kind === 'op' && t.text === '!=' ? 'notin' : 'in', values: [value] };
      } else if (isOp(t, '<', '>')) {
        at++;
        const value = identifier('an integer');
        if (!/^-?\d+$/.test(value)) throw badRequest(`unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: "${value}"`);
        requirement = { key, operator: t.kind === 'op' && t.text === '>' ? 'gt' : 'lt', values: [value] };
      } else if (t.kind === 'id' && (t.text === 'in' || t.text === 'notin')) {
        at++;
        if (!isOp(peek(), '(')) throw fail('expected "(" after in/notin');
        at++;
        const values: string[] = [];
        for (;;) {
          values.push(peek().kind === 'id' ? identifier('a value') : '');
          if (isOp(peek(), ')')) break;
          if (!isOp(peek(), ',')) throw fail('expected "," or ")"');
          at++;
        }
        at++;
        if (values.length === 1 && values[0] === '') throw badRequest(`unable to parse requirement: for 'in', 'notin' operators, values set can't be empty (selector "${text}")`);
        requirement = { key, operator: t.text === 'in' ? 'in' : 'notin', values };
      } else {
        throw fail('expected an operator (=, ==, !=, in, notin, <, >) or ","');
      }
    }
    checkRequirement(requirement);
    requirements.push(requirement);
    if (peek().kind === 'end') return requirements;
    if (!isOp(peek(), ',')) throw fail('expected ","');
    at++;
  }
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'end of string' : t.text;
}

function checkRequirement(r: LabelRequirement): void {
  if (!isQualifiedName(r.key)) throw badRequest(`unable to parse requirement: invalid label key "${r.key}": must be a qualified name ([prefix/]name, name at most 63 characters of [A-Za-z0-9-_.])`);
  for (const v of r.values) {
    if (r.operator !== 'gt' && r.operator !== 'lt' && !isLabelValue(v)) throw badRequest(`unable to parse requirement: invalid label value "${v}" for key "${r.key}"`);
  }
}

export function matchesLabels(requirements: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  return requirements.every((r) => {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const value = has ? labels[r.key]! : '';
    switch (r.operator) {
      case 'exists':
        return has;
      case 'doesnotexist':
        return !has;
      case 'in':
        return has && r.values.includes(value);
      case 'notin':
        return !has || !r.values.includes(value);
      case 'gt':
      case 'lt': {
        // As in apimachinery: a missing or non-integer label never satisfies < or >.
        if (!has || !/^-?\d+$/.test(value)) return false;
        return r.operator === 'gt' ? Number(value) > Number(r.values[0]) : Number(value) < Number(r.values[0]);
      }
    }
  });
}

export function parseFieldSelector(text: string): FieldRequirement[] {
  const requirements: FieldRequirement[] = [];
  for (const term of splitUnescaped(text, ',')) {
    if (term.trim() === '') continue;
    const match = /^(.*?)(!=|==|=)(.*)$/.exec(unescapedOperatorView(term));
    if (!match) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    const field = term.slice(0, match[1]!.length).trim();
    const value = unescape(term.slice(match[1]!.length + match[2]!.length), text);
    requirements.push({ field, operator: match[2] === '!=' ? '!=' : '=', value });
  }
  return requirements;
}

/** `term` with escaped characters masked, so that the operator search skips `\=`. */
function unescapedOperatorView(term: string): string {
  return term.replace(/\\./g, '__');
}

function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescape(value: string, selector: string): string {
  return value.replace(/\\(.?)/g, (_, c: string) => {
    if (c === '\\' || c === ',' || c === '=') return c;
    throw badRequest(`invalid field selector: invalid escape sequence "\\${c}" in "${selector}"`);
  });
}

export function matchesFields(requirements: FieldRequirement[], valueOf: (field: string) => string): boolean {
  return requirements.every((r) => (valueOf(r.field) === r.value) === (r.operator === '='));
}

/**
 * A `metav1.LabelSelector` (`{matchLabels, matchExpressions}`) as the selector string apimachinery prints for
 * it (LabelSelectorAsSelector(...).String()): requirements sorted by key, values of in/notin sorted, `""` for
 * none or an empty selector. What a Scale's `status.selector` carries; throws 400 for an invalid selector.
 */
export function labelSelectorString(selector: unknown): string {
  if (typeof selector !== 'object' || selector === null) return '';
  const { matchLabels, matchExpressions } = selector as { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
  const terms: { key: string; text: string }[] = Object.entries(matchLabels ?? {}).map(([key, value]) => ({ key, text: `${key}=${value}` }));
  for (const { key, operator, values = [] } of matchExpressions ?? []) {
    const sorted = [...values].sort();
    if (operator === 'In' || operator === 'NotIn') {
      if (sorted.length === 0) throw badRequest(`unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`);
      terms.push({ key, text: `${key} ${operator === 'In' ? 'in' : 'notin'} (${sorted.join(',')})` });
    } else if (operator === 'Exists' || operator === 'DoesNotExist') {
      if (sorted.length > 0) throw badRequest(`unable to parse requirement: values set must be empty for exists and does not exist`);
      terms.push({ key, text: operator === 'Exists' ? key : `!${key}` });
    } else {
      throw badRequest(`"${operator}" is not a valid label selector operator`);
    }
  }
  for (const { key } of terms) checkRequirement({ key, operator: 'exists', values: [] });
  return terms
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((t) => t.text)
    .join(',');
}
