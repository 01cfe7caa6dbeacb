/// Namespace for the FerryRegistry module. See STYLE.md for what lives here.
public enum FerryRegistry {}
