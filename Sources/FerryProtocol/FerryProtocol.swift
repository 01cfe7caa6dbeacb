/// Namespace for the FerryProtocol module. See STYLE.md for what lives here.
public enum FerryProtocol {}
