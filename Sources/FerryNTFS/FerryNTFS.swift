/// Namespace for the FerryNTFS module. See STYLE.md for what lives here.
public enum FerryNTFS {}
