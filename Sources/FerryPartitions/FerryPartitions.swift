/// Namespace for the FerryPartitions module. See STYLE.md for what lives here.
public enum FerryPartitions {}
