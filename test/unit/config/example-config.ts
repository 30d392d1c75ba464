// Reads loft.toml.example the way a user edits it: "# [table]" and "# key = value" lines are
// settings shown commented, every other comment line is prose about the setting below it. A
// setting whose prose says "this is an example" shows an example value; any other shows its
// default. uncomment() makes the chosen settings active, as a user removing "# " would.

export interface ExampleSetting {
  /** The table the line belongs to (for a table header: the table it opens). */
  table: string;
  /** The key, or undefined for a table header. */
  key: string | undefined;
  /** The prose above it calls the value an example rather than the default. */
  example: boolean;
}

const TABLE = /^# \[([a-z0-9_.]+)\]$/;
const KEY = /^# ([a-z_]+) = /;
const ACTIVE_TABLE = /^\[([a-z0-9_.]+)\]$/;

/** The example's text with the settings `pick` chooses uncommented. */
export function uncomment(text: string, pick: (s: ExampleSetting) => boolean): string {
  let table = '';
  let prose: string[] = [];
  return text
    .split('\n')
    .map((line) => {
      const header = TABLE.exec(line) ?? ACTIVE_TABLE.exec(line);
      const key = KEY.exec(line)?.[1];
      if (header !== null) table = header[1]!;
      if (header === null && key === undefined) {
        if (line.startsWith('#')) prose.push(line);
        else prose = [];
        return line;
      }
      const setting = { table, key, example: prose.join(' ').includes('this is an example') };
      prose = [];
      return line.startsWith('# ') && pick(setting) ? line.slice(2) : line;
    })
    .join('\n');
}
