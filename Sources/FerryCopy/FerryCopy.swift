public enum FerryCopy {}
