/** What an element-set picker offers: TLE text, OMM JSON or KVN. */
export const ELEMENTS_FILES = ".tle,.txt,.json,.kvn,.omm,text/plain,application/json";

/** A file picker that hands the chosen file's text to ``onText`` (element sets, catalogs). */
export function TextFileInput({ accept, label, onText }: { accept: string; label: string; onText: (text: string) => void }) {
  return (
    <input
      type="file"
      accept={accept}
      aria-label={label}
      onChange={(e) => {
        const file = e.target.files?.[0];
        if (file) void file.text().then(onText);
      }}
    />
  );
}
