process MULTIQC {
    label 'process_single'

    conda "${projectDir}/environment.yml"
    container "scdeal/scdeal:${workflow.manifest.version}"

    input:
    path multiqc_files, stageAs: "?/*"
    path multiqc_config
    path multiqc_methods_description

    output:
    path "multiqc_report.html", emit: report
    path "*_data"             , emit: data
    path "versions.yml"       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def methods = multiqc_methods_description ? "--config ${multiqc_methods_description}" : ''
    """
    multiqc \\
        --force \\
        --config ${multiqc_config} \\
        ${methods} \\
        --filename multiqc_report.html \\
        ${args} \\
        .

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        multiqc: \$( multiqc --version | sed -e "s/multiqc, version //g" )
    END_VERSIONS
    """

    stub:
    """
    mkdir multiqc_data
    touch multiqc_report.html
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        multiqc: "stub"
    END_VERSIONS
    """
}
