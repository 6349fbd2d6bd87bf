from django.contrib import admin

# The admin is where reviewers work the queue and admins configure Leadsmith.
admin.site.site_header = "Leadsmith admin"
admin.site.site_title = "Leadsmith admin"
admin.site.index_title = "Configuration and review"
