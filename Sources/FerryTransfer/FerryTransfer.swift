/// Namespace for the FerryTransfer module. See STYLE.md for what lives here.
public enum FerryTransfer {}
