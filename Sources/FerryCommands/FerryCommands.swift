public enum FerryCommands {}
