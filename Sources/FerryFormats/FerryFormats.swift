/// Namespace for the FerryFormats module. See STYLE.md for what lives here.
public enum FerryFormats {}
