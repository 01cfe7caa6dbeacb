/// Namespace for the FerryGuest module. See STYLE.md for what lives here.
public enum FerryGuest {}
