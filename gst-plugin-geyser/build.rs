fn main() {
    // COMMIT_ID and BUILD_REL_DATE for the plugin's version and release date.
    gst_plugin_version_helper::info()
}
