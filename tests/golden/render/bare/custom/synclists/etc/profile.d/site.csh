setenv SITE golden
