public enum FerryTestSupport {}
